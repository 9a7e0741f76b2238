"""Text, markdown and HTML readers: cell positions, blanks, spans, <br>, several tables."""
from __future__ import annotations

from extractors.read_html import read_html
from extractors.read_markdown import read_markdown
from extractors.read_text import read_text
from extractors.segment import tokenize
from models.options import ExtractOptions

O = ExtractOptions()


def test_read_text_tabs_keep_blank_positions():
    doc = read_text("二、上年结转政府信息公开申\t\t18\t\t\t\t\t\t18\n".encode("gbk"), O)
    assert [c.text for c in doc.lines[0].cells] == ["二、上年结转政府信息公开申", "", "18", "", "", "", "", "", "18"]


def test_read_html_spans_br_nbsp_and_several_tables():
    html = ("<html><body><p>二、主动公开</p><table><tr><td rowspan=2>规章</td><td>1</td></tr></table>"
            "<p>三、申请</p><table><tr><td colspan=3>5.要求行政机关确认或重新<br>出具已获取信息</td>"
            "<td>&nbsp;</td><td>2</td></tr></table></body></html>")
    doc = read_html(html.encode(), O)
    rows = [[c.text for c in ln.cells] for ln in doc.lines]
    assert ["规章", "1"] in rows
    assert ["5.要求行政机关确认或重新出具已获取信息", "", "2"] in rows
    assert rows.index(["规章", "1"]) < rows.index(["三、申请"])


def test_read_html_nested_layout_tables_flattened():
    html = ("<table><tr><td><table><tr><td>行政许可</td><td>7</td></tr></table></td></tr></table>")
    doc = read_html(html.encode(), O)
    assert [[c.text for c in ln.cells] for ln in doc.lines] == [["行政许可", "7"]]


def test_read_markdown_pipes_and_separator_rows():
    md = "| 规章 | 0 | 0 | 0 |\n|---|---|---|---|\n| 四、结转下年度继续办理 | 1 | 0 |  |\n行政许可 97\n"
    doc = read_markdown(md.encode(), O)
    rows = [[c.text for c in ln.cells] for ln in doc.lines]
    assert rows == [["规章", "0", "0", "0"], ["四、结转下年度继续办理", "1", "0", ""], ["行政许可 97"]]


def test_segment_run_together_labels_and_numbers():
    doc = read_text("规章000行政规范性文件693665（七）总计23 0 00 0 023四、结转\n00000002.其他法律\n".encode(), O)
    toks = [(t.kind, t.text, t.glued) for t in tokenize(doc)]
    assert ("value", "000", True) in toks and ("value", "693665", True) in toks
    assert [t for t in toks if t[0] == "value" and t[1] in ("23", "0", "00", "023")] == [
        ("value", "23", True), ("value", "0", True), ("value", "00", True), ("value", "0", True),
        ("value", "023", True)]
    assert ("value", "0000000", True) in toks and ("label", "2.其他法律", False) in toks


def test_segment_narrative_counts_are_not_values():
    doc = read_text("全年收到政府信息公开申请 34 件，上年结转 2 件。\n".encode(), O)
    assert all(t.kind == "label" for t in tokenize(doc))


def test_segment_page_footer_and_dashes_dropped():
    doc = read_text("— 5 —\n--------\t---\t---\n- 12 -\n".encode(), O)
    assert [t for t in tokenize(doc) if t.kind != "blank"] == []
