"""extractors/read_docx.py on a DOCX typeset at run time from a devset label file."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from models.errors import CORRUPT, EMPTY, InputError
from models.options import ExtractOptions

COLS = ("natural_person", "commercial", "research", "nonprofit", "legal_services", "other_org", "total")
ROWS_2021 = [("一、本年新收政府信息公开申请数量", None, "new"), ("二、上年结转政府信息公开申请数量", None, "carried_in"),
             ("(一)予以公开", None, "granted"), ("(二)部分公开", None, "partial"),
             ("(三)不予公开", "1.属于国家秘密", "denied.state_secret"),
             ("(三)不予公开", "2.其他法律行政法规禁止公开", "denied.prohibited_by_law")]


def _labels() -> dict:
    env = os.environ.get("NIANBAO_DEVSET")
    d = Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "devset"
    p = d / "labels" / "pingtan-2021-form.json"
    if not p.is_file():
        pytest.skip(f"devset not found at {d} (set NIANBAO_DEVSET to run the devset tests)")
    return json.loads(p.read_text())["fields"]


def _docx(fields: dict) -> bytes:
    """Title, period, and the head of table 三 with Word merges: the header 申请人情况 spans 7
    columns (gridSpan), (三)不予公开 spans two rows (vMerge), zeros printed blank."""
    import docx
    doc = docx.Document()
    doc.add_paragraph("平潭综合实验区2021年政府信息公开工作年度报告")
    doc.add_paragraph("本报告所列数据的统计期限自2021年1月1日起至2021年12月31日止。")
    t = doc.add_table(rows=1 + len(ROWS_2021), cols=9)
    head = t.cell(0, 2).merge(t.cell(0, 8))
    head.text = "申请人情况"
    t.cell(0, 0).merge(t.cell(0, 1)).text = "(本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和)"
    for i, (label, sub, key) in enumerate(ROWS_2021, start=1):
        if sub is None:
            t.cell(i, 0).merge(t.cell(i, 1)).text = label
        else:
            t.cell(i, 1).text = sub
        for j, c in enumerate(COLS):
            v = fields[f"apply.{key}.{c}"]
            t.cell(i, 2 + j).text = "" if v == 0 else str(v)
    top = t.cell(5, 0).merge(t.cell(6, 0))
    top.text = "(三)不予公开"
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def test_read_docx_rows_keep_value_positions_and_merges():
    from extractors.read_docx import read_docx
    fields = _labels()
    doc = read_docx(_docx(fields), ExtractOptions())
    assert "2021年政府信息公开工作年度报告" in doc.text
    table = [l for l in doc.lines if len(l.cells) > 1]
    header = [c.text for c in table[0].cells]
    assert header.count("申请人情况") == 1             # gridSpan read once, not per covered column
    for line, (label, sub, key) in zip(table[1:], ROWS_2021):
        values = [c.text for c in line.cells[-7:]]
        assert values == ["" if fields[f"apply.{key}.{c}"] == 0 else str(fields[f"apply.{key}.{c}"])
                          for c in COLS]
    # vMerge: the group label appears on its first row only.
    assert [c.text for c in table[5].cells][:2] == ["(三)不予公开", "1.属于国家秘密"]
    assert [c.text for c in table[6].cells][0] == "2.其他法律行政法规禁止公开"


@pytest.mark.parametrize("data, code", [(b"", EMPTY), (b"PK\x03\x04broken", CORRUPT)])
def test_read_docx_bad_input(data, code):
    from extractors.read_docx import read_docx
    with pytest.raises(InputError) as e:
        read_docx(data, ExtractOptions())
    assert e.value.code == code
