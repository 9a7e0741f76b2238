"""The two national forms (2019, 2021) as data: rows, columns, label variants, relations.

Source of truth: ``shared/spec/canonical-fields.md``. A new label spelling seen in a real report
is a data change here (``variants`` / ``keywords``) plus the sample that shows it, not a new ``if``.

- ``label``: the official wording.
- ``variants``: other full spellings printed by organs (older wording, typos).
- ``keywords``: short distinctive phrases; the spaCy PhraseMatcher finds them inside run-together
  text and inside split labels (``5.要求行政机关确认或重新出具已获取信`` still holds 要求行政机关确认).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    kind: str = "count"          # "count" (non-negative int), "signed" (int, may be < 0), "amount" (万元)


@dataclass(frozen=True, slots=True)
class RowSpec:
    key: str                     # key prefix without the table part, e.g. "denied.state_secret"
    label: str
    keywords: tuple[str, ...]
    variants: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()   # active-table rows carry their own columns


@dataclass(frozen=True, slots=True)
class Relation:
    """sum(lhs) == sum(rhs) over canonical keys; ``name`` is the kind, ``scope`` the row/column."""

    name: str
    scope: str
    lhs: tuple[str, ...]
    rhs: tuple[str, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return self.lhs + self.rhs

    @property
    def label(self) -> str:
        return f"{self.name}[{self.scope}]"


@dataclass(frozen=True, slots=True)
class Form:
    template: str                        # "2019" or "2021"
    active_rows: tuple[RowSpec, ...]
    apply_rows: tuple[RowSpec, ...]
    apply_columns: tuple[Column, ...]
    appeal_groups: tuple[Column, ...]
    appeal_results: tuple[Column, ...]
    relations: tuple[Relation, ...] = field(default=())

    def keys(self) -> list[str]:
        out = [f"active.{r.key}.{c.key}" for r in self.active_rows for c in r.columns]
        out += [f"apply.{r.key}.{c.key}" for r in self.apply_rows for c in self.apply_columns]
        out += [f"appeal.{g.key}.{r.key}" for g in self.appeal_groups for r in self.appeal_results]
        return out

    def column_kind(self, key: str) -> str:
        if key.startswith("active."):
            row, col = key[len("active."):].rsplit(".", 1)
            for r in self.active_rows:
                if r.key == row:
                    for c in r.columns:
                        if c.key == col:
                            return c.kind
        return "count"


# --- Table 1: active disclosure (第二十条) -------------------------------------------------

_C = Column
_MADE_2019 = (_C("new_made", "本年新制作数量"), _C("new_published", "本年新公开数量"),
              _C("total_published", "对外公开总数量"))
_ITEMS_2019 = (_C("prev_items", "上一年项目数量"), _C("change", "本年增/减", "signed"),
               _C("decisions", "处理决定数量"))
_ISSUED_2021 = (_C("issued", "本年制发件数"), _C("repealed", "本年废止件数"), _C("in_force", "现行有效件数"))
_DECISIONS_2021 = (_C("decisions", "本年处理决定数量"),)

_RULES = ("rules", "规章", ("规章",))
_NORMATIVE = ("normative_docs", "规范性文件", ("规范性文件",), ("行政规范性文件",))
_LICENSING = ("licensing", "行政许可", ("行政许可",))
_OTHER_SERVICES = ("other_services", "其他对外管理服务事项", ("其他对外管理服务", "对外管理服务事项"))
_PENALTY = ("penalty", "行政处罚", ("行政处罚",))
_COERCION = ("coercion", "行政强制", ("行政强制",))
_FEES = ("fees", "行政事业性收费", ("行政事业性收费", "事业性收费"))
_PROCUREMENT = ("procurement", "政府集中采购", ("政府集中采购", "集中采购"))


def _row(spec: tuple, columns: tuple[Column, ...] = ()) -> RowSpec:
    key, label, keywords, *rest = spec
    return RowSpec(key, label, keywords, tuple(rest[0]) if rest else (), columns)


ACTIVE_2019 = (
    _row(_RULES, _MADE_2019), _row(_NORMATIVE, _MADE_2019),
    _row(_LICENSING, _ITEMS_2019), _row(_OTHER_SERVICES, _ITEMS_2019),
    _row(_PENALTY, _ITEMS_2019), _row(_COERCION, _ITEMS_2019),
    _row(_FEES, (_C("prev_items", "上一年项目数量"), _C("change", "本年增/减", "signed"))),
    _row(_PROCUREMENT, (_C("items", "采购项目数量"), _C("amount", "采购总金额（万元）", "amount"))),
)
ACTIVE_2021 = (
    _row(_RULES, _ISSUED_2021), _row(_NORMATIVE, _ISSUED_2021),
    _row(_LICENSING, _DECISIONS_2021), _row(_PENALTY, _DECISIONS_2021), _row(_COERCION, _DECISIONS_2021),
    _row(_FEES, (_C("amount", "本年收费金额（单位：万元）", "amount"),)),
)

# Column headers that tell the templates apart (see detect_template in extractors.meta).
HEADERS_2019 = ("本年新制作数量", "本年新公开数量", "对外公开总数量", "上一年项目数量", "采购项目数量")
HEADERS_2021 = ("本年制发件数", "本年废止件数", "现行有效件数", "本年处理决定数量", "本年收费金额")

# --- Table 2: applications ------------------------------------------------------------------

APPLY_COLUMNS = (
    _C("natural_person", "自然人"), _C("commercial", "商业企业"), _C("research", "科研机构"),
    _C("nonprofit", "社会公益组织"), _C("legal_services", "法律服务机构"), _C("other_org", "其他"),
    _C("total", "总计"),
)
APPLY_COLUMNS_SUBTOTAL = APPLY_COLUMNS[:6] + (_C("org_subtotal", "小计"),) + APPLY_COLUMNS[6:]
ORG_COLUMNS = ("commercial", "research", "nonprofit", "legal_services", "other_org")

R = RowSpec
_APPLY_HEAD = (
    R("new", "一、本年新收政府信息公开申请数量", ("本年新收", "新收政府信息公开申请")),
    R("carried_in", "二、上年结转政府信息公开申请数量", ("上年结转",)),
    R("granted", "(一)予以公开", ("予以公开",)),
    R("partial", "(二)部分公开(区分处理的,只计这一情形,不计其他情形)", ("部分公开",)),
    R("denied.state_secret", "1.属于国家秘密", ("国家秘密",)),
    R("denied.prohibited_by_law", "2.其他法律行政法规禁止公开", ("禁止公开", "法律行政法规", "法行政法规"),
      ("2.其他法律行政止公开",)),
    R("denied.security_stability", "3.危及“三安全一稳定”", ("三安全一稳定", "三安全", "危及")),
    R("denied.third_party", "4.保护第三方合法权益", ("第三方合法权益", "保护第三方")),
    R("denied.internal_affairs", "5.属于三类内部事务信息", ("三类内部事务", "内部事务")),
    R("denied.process_info", "6.属于四类过程性信息", ("四类过程性", "过程性信息")),
    R("denied.enforcement_file", "7.属于行政执法案卷", ("行政执法案卷", "属于行政执", "执法案卷")),
    R("denied.admin_query", "8.属于行政查询事项", ("行政查询",)),
    R("unable.not_held", "1.本机关不掌握相关政府信息", ("不掌握相关", "本机关不掌握")),
    R("unable.needs_creation", "2.没有现成信息需要另行制作", ("没有现成信息", "另行制作")),
    R("unable.still_unclear", "3.补正后申请内容仍不明确", ("补正后申请", "仍不明确")),
    R("not_processed.petition", "1.信访举报投诉类申请", ("信访举报", "举报投诉")),
    R("not_processed.duplicate", "2.重复申请", ("重复申请",)),
    R("not_processed.publication", "3.要求提供公开出版物", ("公开出版物",)),
    R("not_processed.excessive", "4.无正当理由大量反复申请", ("大量反复", "无正当理由大量")),
    R("not_processed.confirm_reissue", "5.要求行政机关确认或重新出具已获取信息",
      ("要求行政机关确认", "重新出具")),
)
_APPLY_TAIL = (
    R("total", "(七)总计", ("(七)总计", "七)总计")),
    R("carried_out", "四、结转下年度继续办理", ("结转下年度", "下年度继续办理")),
)
ROW_OTHER_SINGLE = R("other", "(六)其他处理", ("其他处理",))
ROWS_OTHER_2021 = (
    R("other.no_correction", "1.申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
      ("逾期不补正", "无正当理由逾期")),
    R("other.unpaid_fee", "2.申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
      ("收费通知", "缴纳费用")),
    R("other.misc", "3.其他", ("3.其他",)),
)
APPLY_2019 = _APPLY_HEAD + (ROW_OTHER_SINGLE,) + _APPLY_TAIL
APPLY_2021 = _APPLY_HEAD + ROWS_OTHER_2021 + _APPLY_TAIL
APPLY_2021_SINGLE_OTHER = APPLY_2019   # a 2021 report printing （六）其他处理 as one row

# Group labels: not rows, but the matcher must know them so they do not swallow values.
APPLY_GROUP_KEYWORDS = ("本年度办理结果", "不予公开", "无法提供", "不予处理", "申请人情况", "法人或其他组织")

# --- Table 3: appeals -------------------------------------------------------------------------

APPEAL_GROUPS = (_C("review", "行政复议"), _C("suit_direct", "未经复议直接起诉"),
                 _C("suit_after_review", "复议后起诉"))
APPEAL_RESULTS = (_C("upheld", "结果维持"), _C("corrected", "结果纠正"), _C("other", "其他结果"),
                  _C("pending", "尚未审结"), _C("total", "总计"))


# --- Relations (勾稽关系) ----------------------------------------------------------------------

def _relations(apply_rows: tuple[RowSpec, ...], columns: tuple[Column, ...]) -> tuple[Relation, ...]:
    cols = [c.key for c in columns]
    parts = [c for c in cols if c not in ("total", "org_subtotal")]
    rels: list[Relation] = []
    for r in apply_rows:                                            # 1. row total
        rels.append(Relation("row_total", r.key, (f"apply.{r.key}.total",),
                             tuple(f"apply.{r.key}.{c}" for c in parts)))
        if "org_subtotal" in cols:
            rels.append(Relation("org_subtotal", r.key, (f"apply.{r.key}.org_subtotal",),
                                 tuple(f"apply.{r.key}.{c}" for c in ORG_COLUMNS)))
    results = [r.key for r in apply_rows if r.key not in ("new", "carried_in", "total", "carried_out")]
    for c in cols:                                                  # 2. results total, 3. balance
        rels.append(Relation("results_total", c, (f"apply.total.{c}",),
                             tuple(f"apply.{r}.{c}" for r in results)))
        rels.append(Relation("balance", c, (f"apply.new.{c}", f"apply.carried_in.{c}"),
                             (f"apply.total.{c}", f"apply.carried_out.{c}")))
    for g in APPEAL_GROUPS:                                         # 4. appeal totals
        rels.append(Relation("appeal_total", g.key, (f"appeal.{g.key}.total",),
                             tuple(f"appeal.{g.key}.{r.key}" for r in APPEAL_RESULTS[:4])))
    return tuple(rels)


def build_form(template: str, single_other_row: bool = False, org_subtotal: bool = False) -> Form:
    """The form for a template and its layout variants (canonical-fields.md, 'Layout variants')."""
    if template == "2019":
        active, apply_rows = ACTIVE_2019, APPLY_2019
    elif template == "2021":
        active = ACTIVE_2021
        apply_rows = APPLY_2021_SINGLE_OTHER if single_other_row else APPLY_2021
    else:
        raise ValueError(f"unknown template {template!r}")
    columns = APPLY_COLUMNS_SUBTOTAL if org_subtotal else APPLY_COLUMNS
    return Form(template, active, apply_rows, columns, APPEAL_GROUPS, APPEAL_RESULTS,
                _relations(apply_rows, columns))


def all_row_specs() -> dict[str, tuple[str, RowSpec]]:
    """Every row of every form by ``table.key`` (for the label matcher)."""
    out: dict[str, tuple[str, RowSpec]] = {}
    for r in ACTIVE_2019 + ACTIVE_2021:
        out.setdefault(f"active.{r.key}", ("active", r))
    for r in APPLY_2019 + APPLY_2021:
        out.setdefault(f"apply.{r.key}", ("apply", r))
    return out
