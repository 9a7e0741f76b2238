"""worker/collection.py: relation 5 across years, duplicate reports, organ names."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models.tables import ReviewItem
from reportgen import make_report
from worker.archive import run_archive
from worker.collection import (ReportValues, carried_over_violations, duplicate_report_violations, find_violations,
                               organ_key, organ_name_violations, organ_spelling, run_collection_checks)


def _write(root, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text, encoding="utf-8")


def _items(store, **where) -> list[ReviewItem]:
    with store.session() as s:
        q = select(ReviewItem).where(ReviewItem.kind == "collection")
        for k, v in where.items():
            q = q.where(getattr(ReviewItem, k) == v)
        return list(s.scalars(q.order_by(ReviewItem.id)))


def test_collection_carried_in_differs_from_last_years_carried_out_is_flagged(tmp_path, store):
    root = tmp_path / "a"
    root.mkdir()
    # 甲区科学技术局: 2020 carries out 5, but its 2021 report says 3 were carried in -> flagged
    _write(root, "jia-2020.txt", make_report("甲区科学技术局", 2020, new=10, carried_in=0, carried_out=5))
    _write(root, "jia-2021.txt", make_report("甲区科学技术局", 2021, new=4, carried_in=3, carried_out=1))
    # 乙区民政局: 2020 carries out 2 and 2021 carries in 2 -> consistent, nothing flagged
    _write(root, "yi-2020.txt", make_report("乙区民政局", 2020, new=6, carried_in=1, carried_out=2))
    _write(root, "yi-2021.txt", make_report("乙区民政局", 2021, new=3, carried_in=2, carried_out=0))
    summary = run_archive(store, [root], workers=1)
    assert summary.counts == {"done": 4}
    docs = {i["path"].rsplit("/", 1)[-1]: i["document_id"] for i in store.batch_items(summary.batch_id)}

    result = run_collection_checks(store)
    flagged = _items(store)
    assert {(i.document_id, i.field_key) for i in flagged} == {
        (docs["jia-2021.txt"], "apply.carried_in.natural_person"),
        (docs["jia-2021.txt"], "apply.carried_in.total")}
    item = flagged[0]
    assert item.state == "open" and item.priority >= 10 and item.field_id is not None
    assert item.details["previous_document_id"] == docs["jia-2020.txt"]
    assert item.details["value"] == 3 and item.details["previous_value"] == 5
    assert "上年结转" in item.reason and "= 3" in item.reason and "= 5" in item.reason
    assert result.created == 2

    # idempotent: a second run opens nothing new
    again = run_collection_checks(store)
    assert again.created == 0 and again.kept == 2 and len(_items(store)) == 2


def test_collection_item_superseded_when_the_values_are_corrected(tmp_path, store):
    root = tmp_path / "a"
    root.mkdir()
    _write(root, "2020.txt", make_report("丙县教育局", 2020, new=10, carried_in=0, carried_out=5))
    _write(root, "2021.txt", make_report("丙县教育局", 2021, new=4, carried_in=3, carried_out=1))
    s = run_archive(store, [root], workers=1)
    docs = {i["path"].rsplit("/", 1)[-1]: i["document_id"] for i in store.batch_items(s.batch_id)}
    run_collection_checks(store)
    assert len(_items(store, state="open")) == 2
    # the reviewer finds last year's report was misread: its carried_out is 3, not 5
    for key in ("apply.carried_out.natural_person", "apply.carried_out.total"):
        store.record_decision(docs["2020.txt"], key, "corrected", value=3)
    result = run_collection_checks(store)
    assert result.superseded == 2 and not _items(store, state="open")
    assert not result.violations


def test_collection_item_closed_by_a_decision_on_its_field_is_not_reopened(tmp_path, store):
    root = tmp_path / "a"
    root.mkdir()
    _write(root, "2020.txt", make_report("丙县教育局", 2020, new=10, carried_in=0, carried_out=5))
    _write(root, "2021.txt", make_report("丙县教育局", 2021, new=4, carried_in=3, carried_out=1))
    s = run_archive(store, [root], workers=1)
    docs = {i["path"].rsplit("/", 1)[-1]: i["document_id"] for i in store.batch_items(s.batch_id)}
    run_collection_checks(store)
    # the organ's own arithmetic: the printed values stand (source_error), the items are done
    for key in ("apply.carried_in.natural_person", "apply.carried_in.total"):
        store.record_decision(docs["2021.txt"], key, "source_error")
    assert {i.state for i in _items(store)} == {"done"}
    result = run_collection_checks(store)
    assert len(result.violations) == 2 and result.created == 0 and result.kept == 2


def _rv(doc_id: int, agency: str | None, year: int | None, **values) -> ReportValues:
    return ReportValues(doc_id, None, f"d{doc_id}", agency, year, "2019",
                        {k.replace("__", "."): v for k, v in values.items()})


@pytest.mark.parametrize("a, b", [
    ("上海市科委", "上海市科学技术委员会"),
    ("上海市 科学技术委员会", "上海市科学技术委员会"),
    ("ＡＢ市民政局", "AB市民政局"),                 # 全角 / 半角
    ("洪泽区政府", "洪泽区人民政府"),
    ("上海市政府办公厅", "上海市人民政府办公厅"),
])
def test_collection_organ_key_groups_spellings_of_one_organ(a, b):
    assert organ_key(a) == organ_key(b)


def test_collection_organ_key_keeps_different_organs_apart():
    assert organ_key("上海市科学技术委员会") != organ_key("上海市教育委员会")
    assert organ_key("洛龙区民政局") != organ_key("洛龙区财政局")


def test_collection_relation5_across_spellings_and_missing_years():
    reports = [
        _rv(1, "上海市科委", 2022, apply__carried_out__total=4),
        _rv(2, "上海市科学技术委员会", 2023, apply__carried_in__total=4),       # consistent
        _rv(3, "上海市科学技术委员会", 2024, apply__carried_in__total=9),       # 2023 carried out blank
        _rv(4, "上海市 科学技术委员会", 2026, apply__carried_in__total=1),      # 2025 missing
    ]
    assert carried_over_violations(reports) == []
    reports.append(_rv(5, "上海市科学技术委员会", 2025, apply__carried_out__total=2))
    [v] = carried_over_violations(reports)
    assert (v.document_id, v.field_key, v.details["previous_document_id"]) == (4, "apply.carried_in.total", 5)


def test_collection_duplicate_reports_with_different_numbers():
    reports = [_rv(1, "丁区民政局", 2020, apply__new__total=5, apply__granted__total=5),
               _rv(2, "丁区 民政局", 2020, apply__new__total=6, apply__granted__total=5),
               _rv(3, "丁区民政局", 2021, apply__new__total=1),
               _rv(4, "丁区民政局", 2021, apply__new__total=1)]                 # same numbers: fine
    vs = duplicate_report_violations(reports)
    assert sorted(v.document_id for v in vs) == [1, 2]
    assert "apply.new.total 5 vs 6" in vs[0].reason and vs[0].details["differences"] == [["apply.new.total", 5, 6]]


def test_collection_organ_name_variant_needs_confirmation_only_beyond_width_and_spaces():
    reports = [_rv(1, "上海市科委", 2023), _rv(2, "上海市科学技术委员会", 2024),
               _rv(3, "上海市科学技术委员会", 2022), _rv(4, "上海市 科学技术委员会", 2021)]
    vs = organ_name_violations(reports)
    assert [v.document_id for v in vs] == [1]
    assert vs[0].organ == "上海市科学技术委员会" and "上海市科委" in vs[0].reason
    assert organ_spelling("上海市 科学技术委员会") == organ_spelling("上海市科学技术委员会")


def test_collection_reports_without_organ_or_year_are_not_grouped():
    reports = [_rv(1, None, 2020, apply__carried_out__total=1), _rv(2, None, 2021, apply__carried_in__total=2),
               _rv(3, "戊区民政局", None), _rv(4, "戊区民政局", None)]
    assert find_violations(reports) == []
