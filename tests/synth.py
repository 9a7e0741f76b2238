"""Reports typeset from field values, in the broken layouts real archives show.

Used by the property tests and the breakage tests: the truth is known, so a test can assert that
no wrong value is ever returned unflagged. Nothing here is copied from an organ's report.
"""
from __future__ import annotations

import random

from models.forms import APPEAL_GROUPS, APPEAL_RESULTS, Form, build_form

ACTIVE_HEADERS = {
    "2019": {"rules": "本年新制作数量\t本年新公开数量\t对外公开总数量",
             "licensing": "上一年项目数量\t本年增/减\t处理决定数量",
             "fees": "上一年项目数量\t本年增/减", "procurement": "采购项目数量\t采购总金额(单位:万元)"},
    "2021": {"rules": "本年制发件数\t本年废止件数\t现行有效件数", "licensing": "本年处理决定数量",
             "fees": "本年收费金额(单位:万元)"},
}


def consistent_values(rng: random.Random, template: str = "2019", zero_share: float = 0.6,
                      single_other: bool = False, org_subtotal: bool = False) -> tuple[Form, dict[str, int | float]]:
    """Random field values that satisfy every relation of the form."""
    form = build_form(template, single_other_row=single_other, org_subtotal=org_subtotal)
    cols = [c.key for c in form.apply_columns if c.key not in ("total", "org_subtotal")]
    v: dict[str, int | float] = {}

    def n(hi: int = 60) -> int:
        return 0 if rng.random() < zero_share else rng.randint(1, hi)

    results = [r.key for r in form.apply_rows if r.key not in ("new", "carried_in", "total", "carried_out")]
    for r in results:
        for c in cols:
            v[f"apply.{r}.{c}"] = n()
    for c in cols:
        v[f"apply.total.{c}"] = sum(v[f"apply.{r}.{c}"] for r in results)
        v[f"apply.carried_out.{c}"] = n(10)
        whole = v[f"apply.total.{c}"] + v[f"apply.carried_out.{c}"]
        v[f"apply.carried_in.{c}"] = rng.randint(0, min(whole, 10)) if whole else 0
        v[f"apply.new.{c}"] = whole - v[f"apply.carried_in.{c}"]
    for r in form.apply_rows:
        v[f"apply.{r.key}.total"] = sum(v[f"apply.{r.key}.{c}"] for c in cols)
        if org_subtotal:
            v[f"apply.{r.key}.org_subtotal"] = sum(v[f"apply.{r.key}.{c}"] for c in cols[1:])
    for g in APPEAL_GROUPS:
        parts = [n(9) for _ in APPEAL_RESULTS[:4]]
        for res, p in zip(APPEAL_RESULTS[:4], parts):
            v[f"appeal.{g.key}.{res.key}"] = p
        v[f"appeal.{g.key}.total"] = sum(parts)
    for row in form.active_rows:
        for col in row.columns:
            if col.kind == "amount":
                v[f"active.{row.key}.{col.key}"] = round(rng.randint(0, 999999) / 100, 2)
            elif col.kind == "signed":
                v[f"active.{row.key}.{col.key}"] = rng.randint(-5, 20)
            else:
                v[f"active.{row.key}.{col.key}"] = n(900)
    return form, v


def _fmt(x) -> str:
    return str(int(x)) if float(x) == int(x) else f"{x:.2f}"


def render_tab_dump(form: Form, v: dict, *, agency: str = "测试县人民政府", year: int = 2020,
                    blank: set[str] = frozenset(), glue_rows: set[str] = frozenset(),
                    split_labels: dict[str, int] | None = None, indent: bool = True,
                    footer_every: int = 0, drop_labels: set[str] = frozenset(),
                    label_override: dict[str, str] | None = None) -> str:
    """Seed-style text dump: tab-joined cells, header over three lines, optional breakage.

    ``blank``: keys printed as an empty cell; ``glue_rows``: row keys whose cells are printed
    with no separator; ``split_labels``: row key -> cut position (tail printed on a later line);
    ``drop_labels``: row keys printed without their label; ``footer_every``: a ``— n —`` page
    footer after every n table lines.
    """
    split_labels = split_labels or {}
    label_override = label_override or {}
    out = [f"{agency}{year}年政府信息公开工作年度报告", "",
           f"本报告所列数据的统计期限为{year}年1月1日至{year}年12月31日。", "", "一、总体情况", "（略）", "",
           "二、主动公开政府信息情况", ""]
    hdr = ACTIVE_HEADERS[form.template]
    for row in form.active_rows:
        head = hdr.get(row.key)
        if head:
            out.append(f"信息内容\t{head}")
        cells = [("" if f"active.{row.key}.{c.key}" in blank else _fmt(v[f"active.{row.key}.{c.key}"]))
                 for c in row.columns]
        out.append(row.label.split(".", 1)[-1] + "\t" + "\t".join(cells))
    out += ["", "三、收到和处理政府信息公开申请情况", "",
            "(本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和)\t\t申请人情况\t\t\t\t\t\t总计\t",
            "\t\t自然人\t法人或其他组织\t\t\t\t\t\t",
            "\t\t\t商业企业\t科研机构\t社会公益组织\t法律服务机构\t其他\t"
            + ("小计\t" if len(form.apply_columns) == 8 else "") + "\t"]
    tails: list[str] = []
    table_lines = 0
    for row in form.apply_rows:
        label = label_override.get(row.key, row.label)
        if row.key in split_labels:
            cut = split_labels[row.key]
            label, tail = label[:cut], label[cut:]
            if tail:
                tails.append("\t" + tail + "\t" * 7)
        if row.key in drop_labels:
            label = ""
        keys = [f"apply.{row.key}.{c.key}" for c in form.apply_columns]
        cells = ["" if k in blank else _fmt(v[k]) for k in keys]
        prefix = "\t\t" if indent and "." in row.label[:3] else ""
        if row.key in glue_rows:
            line = f"{prefix}{label}\t\t" + "".join(cells)
        else:
            line = f"{prefix}{label}\t\t" + "\t".join(cells)
        out.append(line)
        table_lines += 1
        if len(tails) and row.key not in split_labels:
            out.append("")
            out.append(tails.pop(0))
        if footer_every and table_lines % footer_every == 0:
            out += ["", f"— {table_lines // footer_every + 1} —", ""]
    out += tails
    out += ["", "四、政府信息公开行政复议、行政诉讼情况", "",
            "行政复议\t\t\t\t\t行政诉讼" + "\t" * 9,
            "结果 维持\t结果 纠正\t其他 结果\t尚未 审结\t总计\t未经复议直接起诉\t\t\t\t\t复议后起诉\t\t\t\t",
            "\t\t\t\t\t结果 维持\t结果 纠正\t其他 结果\t尚未 审结\t总计\t结果 维持\t结果 纠正\t其他 结果\t尚未 审结\t总计"]
    akeys = [f"appeal.{g.key}.{r.key}" for g in APPEAL_GROUPS for r in APPEAL_RESULTS]
    out.append("\t".join("" if k in blank else _fmt(v[k]) for k in akeys))
    out += ["", "五、存在的主要问题及改进情况", "（略）", "六、其他需要报告的事项", "无"]
    return "\n".join(out) + "\n"


def render_html(form: Form, v: dict, *, agency: str = "测试市民政局", year: int = 2022,
                blank: set[str] = frozenset()) -> str:
    """The official layout as an HTML page with rowspan/colspan and &nbsp; blanks."""
    def td(x, **attrs):
        a = "".join(f' {k}="{val}"' for k, val in attrs.items())
        return f"<td{a}>{x}</td>"

    def val(k):
        return "&nbsp;" if k in blank else _fmt(v[k])

    h = [f"<html><head><meta charset='utf-8'></head><body><h2>{agency}{year}年政府信息公开工作年度报告</h2>",
         f"<p>本报告所列数据的统计期限自{year}年1月1日起至{year}年12月31日止。</p><p>二、主动公开政府信息情况</p><table>"]
    hdr = ACTIVE_HEADERS[form.template]
    for row in form.active_rows:
        head = hdr.get(row.key)
        if head:
            h.append("<tr>" + td("信息内容") + "".join(td(x) for x in head.split("\t")) + "</tr>")
        h.append("<tr>" + td(row.label) + "".join(td(val(f"active.{row.key}.{c.key}")) for c in row.columns) + "</tr>")
    h.append("</table><p>三、收到和处理政府信息公开申请情况</p><table>")
    h.append("<tr>" + td("（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）", colspan=3, rowspan=3)
             + td("申请人情况", colspan=7) + "</tr>")
    h.append("<tr>" + td("自然人", rowspan=2) + td("法人或其他组织", colspan=5) + td("总计", rowspan=2) + "</tr>")
    h.append("<tr>" + "".join(td(x) for x in ("商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他")) + "</tr>")
    for row in form.apply_rows:
        keys = [f"apply.{row.key}.{c.key}" for c in form.apply_columns]
        h.append("<tr>" + td(row.label.replace("(", "（").replace(")", "）"), colspan=3)
                 + "".join(td(val(k)) for k in keys) + "</tr>")
    h.append("</table><p>四、政府信息公开行政复议、行政诉讼情况</p><table>")
    h.append("<tr>" + td("行政复议", colspan=5) + td("行政诉讼", colspan=10) + "</tr>")
    h.append("<tr>" + "".join(td(r.label, rowspan=2) for r in APPEAL_RESULTS) + td("未经复议直接起诉", colspan=5)
             + td("复议后起诉", colspan=5) + "</tr>")
    h.append("<tr>" + "".join(td(r.label) for r in APPEAL_RESULTS) * 2 + "</tr>")
    akeys = [f"appeal.{g.key}.{r.key}" for g in APPEAL_GROUPS for r in APPEAL_RESULTS]
    h.append("<tr>" + "".join(td(val(k)) for k in akeys) + "</tr></table><p>五、存在的主要问题及改进情况</p></body></html>")
    return "".join(h)
