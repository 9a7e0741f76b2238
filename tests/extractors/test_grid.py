"""Row reconstruction: one test per breakage real dumps show (issue 2), on typeset inputs."""
from __future__ import annotations

import random

import pytest

from synth import consistent_values, render_tab_dump
from testkit import SEED
from extractors.grid import _splits, decode, parse_value
from extractors.pipeline import extract_bytes
from extractors.segment import Token
from models.cells import Cell


def _extract(text: str, name: str = "t.txt"):
    r = extract_bytes(text.encode("utf-8"), name)
    assert r.status != "failed", r.error
    return r


def _truth(seed=7, template="2019", **kw):
    return consistent_values(random.Random(seed), template, zero_share=0.3, **kw)


def _assert_all_right(result, truth, flagged_ok=()):
    for k, want in truth.items():
        f = result.fields[k]
        if k in flagged_ok:
            assert f.review or f.value == want, k
        else:
            assert not f.review and f.value == want, (k, f.value, want, f.reasons)


def test_grid_label_split_with_numbers_between():
    """`5.要求行政机关确认或重新出具已获取信` … later `息` (the seed's breakage)."""
    form, truth = _truth()
    text = render_tab_dump(form, truth, split_labels={"not_processed.confirm_reissue": 17,
                                                      "carried_in": 12, "denied.internal_affairs": 8})
    assert "\t息" in text or "息\t" in text
    _assert_all_right(_extract(text), truth)


def test_grid_labels_lost_indentation():
    form, truth = _truth(seed=8)
    _assert_all_right(_extract(render_tab_dump(form, truth, indent=False)), truth)


def test_grid_page_footer_and_dashes_inside_table():
    form, truth = _truth(seed=9)
    text = render_tab_dump(form, truth, footer_every=5).replace("三、收到和处理", "--------\t---\t---\n三、收到和处理")
    assert "— 2 —" in text
    _assert_all_right(_extract(text), truth)


def test_grid_blank_cells_pinned_exactly_or_flagged():
    form, truth = _truth(seed=10)
    zero_parts = [k for k, v in truth.items() if k.startswith("apply.") and v == 0 and not k.endswith(".total")][:6]
    lost = ["apply.granted.natural_person"]          # a non-zero cell lost: the row total pins it
    truth["apply.granted.natural_person"] = truth["apply.granted.natural_person"] or 0
    result = _extract(render_tab_dump(form, truth, blank=set(zero_parts + lost)))
    for k in zero_parts + lost:
        f = result.fields[k]
        assert not f.review and f.value == truth[k], (k, f.reasons)
        assert any("pinned" in r for r in f.reasons)


def test_grid_appeal_review_cells_lost_ten_of_fifteen():
    result = _extract(SEED.read_text("utf-8"), SEED.name)
    for r in ("upheld", "corrected", "other", "pending", "total"):
        f = result.fields[f"appeal.review.{r}"]
        assert f.review and f.value is None and "blank cell" in f.reasons
    assert not result.fields["appeal.suit_direct.total"].review


def test_grid_value_rows_without_label_placed_by_row_order():
    form, truth = _truth(seed=11)
    result = _extract(render_tab_dump(form, truth, drop_labels={"partial", "unable.needs_creation"}))
    for k in ("apply.partial.natural_person", "apply.unable.needs_creation.total"):
        assert any("row order" in r for r in result.fields[k].reasons)
    _assert_all_right(result, truth)


def test_grid_unlabelled_row_flagged_when_relations_disagree():
    form, truth = _truth(seed=12)
    text = render_tab_dump(form, truth, drop_labels={"partial"})
    # the organ mistyped a cell of the unlabelled row: its row total no longer holds
    lines = text.split("\n")
    i = next(i for i, ln in enumerate(lines) if ln.startswith("\t\t") and ln.strip() and
             not any("\u4e00" <= ch <= "\u9fff" for ch in ln) and ln.count("\t") >= 8)
    cells = lines[i].split("\t")
    cells[2] = str(int(cells[2]) + 5)
    lines[i] = "\t".join(cells)
    result = _extract("\n".join(lines))
    assert result.fields["apply.partial.natural_person"].review


@pytest.mark.parametrize("seed", range(13, 20))
def test_grid_cells_run_together_decoded_by_relations(seed):
    """`713000074` is 71 3 0 0 0 0 74: the row total and the column relations leave one split."""
    form, truth = consistent_values(random.Random(seed), "2019", zero_share=0.6)
    glued = {"granted", "denied.state_secret", "not_processed.duplicate", "carried_out"}
    text = render_tab_dump(form, truth, glue_rows=glued)
    assert any(len(ln.split("\t")[-1]) >= 9 for ln in text.split("\n") if "予以公开" in ln)
    _assert_all_right(_extract(text), truth)


def test_grid_ambiguous_split_is_flagged():
    toks = [Token("value", "3960181", 0, Cell("3960181"), glued=True)]
    from extractors.grid import Item
    cands, _, glued = decode([Item("value", toks[0], 0)], ["count", "signed", "count"], 1000)
    assert glued and len(cands) > 1                     # 396/0/181, 39/60/181, … : no relation decides
    text = "政府信息公开工作年度报告 2019年\n第二十条第（五）项\n信息内容上一年项目数量本年增/减处理决定数量\n行政许可3960181\n"
    text += SEED.read_text("utf-8").split("收到和处理政府信息公开申请情况")[1]
    result = _extract(text)
    assert all(result.fields[f"active.licensing.{c}"].review for c in ("prev_items", "change", "decisions"))


def test_grid_splits_have_no_leading_zeros():
    assert _splits("000", 3, [100]) == [["0", "0", "0"]]
    assert ["0", "0", "23"] in _splits("0023", 3, [100])
    assert all(not (p.startswith("0") and len(p) > 1) for s in _splits("100230", 3, [1000]) for p in s)


@pytest.mark.parametrize("printed,kind,value,flag", [
    ("0", "count", 0, False), ("12", "count", 12, False), ("-3", "signed", -3, False),
    ("7730.28", "amount", 7730.28, False), ("251000元", "amount", 25.1, False),
    ("1.5", "count", 1.5, True), ("-2", "count", -2, True),
])
def test_grid_parse_value(printed, kind, value, flag):
    cv = parse_value(printed, kind)
    assert cv.value == value and cv.unclean == flag


def test_grid_2021_single_other_row_and_subtotal_column():
    form, truth = _truth(seed=14, template="2021", single_other=True)
    result = _extract(render_tab_dump(form, truth, year=2022))
    assert "apply.other.total" in result.fields and "apply.other.misc.total" not in result.fields
    _assert_all_right(result, truth)


@pytest.mark.parametrize("seed,template", [(0, "2019"), (1, "2021")])
def test_grid_cells_one_per_line(seed, template):
    """pdftotext-style dumps: the label on its line, then each cell on a line of its own."""
    form, truth = consistent_values(random.Random(seed), template)
    text = render_tab_dump(form, truth, indent=False).replace("\t", "\n")
    _assert_all_right(_extract(text), truth)


def test_grid_org_subtotal_column():
    """An extra 法人或其他组织 / 小计 column: 8 cells a row and one more relation."""
    form, truth = _truth(seed=16, template="2021", org_subtotal=True)
    text = render_tab_dump(form, truth, year=2023)
    assert "小计" in text
    result = _extract(text)
    assert "apply.new.org_subtotal" in result.fields
    assert any(c.relation == "org_subtotal" and c.ok for c in result.checks)
    _assert_all_right(result, truth)


def test_grid_label_variants_typos_and_numbering():
    form, truth = _truth(seed=15)
    text = render_tab_dump(form, truth, label_override={
        "denied.prohibited_by_law": "2.其他法律行政止公开",       # typo seen in a real report
        "denied.state_secret": "1、属于国家秘密",                   # 1、 for 1.
        "unable.not_held": "1.本机关不掌握相关信息",               # older wording
        "granted": "（一）予以公开",                                # 全角 brackets
    })
    _assert_all_right(_extract(text), truth)


def test_grid_one_misprinted_cell_is_pointed_at_not_its_whole_row_and_column():
    form, truth = _truth(seed=3)
    printed = dict(truth)
    printed["apply.granted.commercial"] += 5          # the organ's (or the OCR's) one wrong number
    result = _extract(render_tab_dump(form, printed))
    flagged = [k for k, f in result.fields.items() if f.review]
    assert flagged == ["apply.granted.commercial"]
    f = result.fields["apply.granted.commercial"]
    assert f.value == printed["apply.granted.commercial"]          # reported as printed, not repaired
    assert any("likely the misread cell" in r for r in f.reasons)
    assert sum(1 for c in result.checks if c.ok is False) == 2      # both breaks still reported


def test_grid_two_misprints_in_one_relation_flag_everything_in_it():
    form, truth = _truth(seed=3)
    printed = dict(truth)
    printed["apply.granted.commercial"] += 5
    printed["apply.partial.commercial"] += 2
    result = _extract(render_tab_dump(form, printed))
    assert all(result.fields[f"apply.{r}.commercial"].review for r in ("granted", "partial", "total"))
