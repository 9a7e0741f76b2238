"""worker/export.py and worker/report.py on a small archived collection (SQLite and PostgreSQL)."""
from __future__ import annotations

import csv
import json

import pytest

from reportgen import make_report, seed_text
from worker.archive import run_archive
from worker.collection import run_collection_checks
from worker.export import (STATE_FILLS, canonical_keys, export_results, long_schema, wide_columns,
                           wide_schema)
from worker.report import gather, write_report

FORMATS = ("csv", "jsonl", "parquet", "xlsx")


def _collection(tmp_path, store) -> dict[str, int]:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / "jia-2020.txt").write_text(make_report("甲区科学技术局", 2020, new=10, carried_in=0, carried_out=5))
    (root / "jia-2021.txt").write_text(make_report("甲区科学技术局", 2021, new=4, carried_in=3, carried_out=1))
    (root / "seed.txt").write_text(seed_text())
    (root / "sub" / "seed-copy.txt").write_text(seed_text())
    (root / "notes.txt").write_text("这不是年度报告。\n")
    summary = run_archive(store, [root], workers=2)
    assert summary.counts == {"done": 3, "duplicate": 1, "junk": 1}
    run_collection_checks(store)
    return {i["path"].rsplit("/", 1)[-1]: i["document_id"] for i in store.batch_items(summary.batch_id)}


def _read(path, fmt):
    if fmt == "csv":
        with open(path, encoding="utf-8-sig", newline="") as f:
            return list(csv.DictReader(f))
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if fmt == "parquet":
        import pyarrow.parquet as pq
        return pq.read_table(path).to_pylist()
    from openpyxl import load_workbook
    ws = load_workbook(path).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_wide_one_row_per_report_with_review_state_and_reviewer(tmp_path, store, fmt):
    docs = _collection(tmp_path, store)
    alice = store.create_user("alice")
    store.record_decision(docs["seed.txt"], "appeal.review.upheld", "corrected", value=0, reviewer_id=alice)
    out = tmp_path / f"wide.{fmt}"
    n = export_results(store, out, fmt, "wide", statuses=["extracted", "needs_review"])
    rows = _read(out, fmt)
    assert n == len(rows) == 3
    by_id = {int(r["id"] if fmt == "jsonl" else r["document_id"]): r for r in rows}
    seed, jia21 = by_id[docs["seed.txt"]], by_id[docs["jia-2021.txt"]]
    if fmt == "jsonl":
        f = seed["fields"]["appeal.review.upheld"]
        assert (f["value"], f["review_state"], f["reviewed_by"]) == (0, "corrected", "alice")
        assert seed["fields"]["appeal.review.total"]["review_state"] == "needs_review"
        assert jia21["fields"]["apply.carried_in.total"]["review_state"] == "needs_review"   # collection check
        assert jia21["organ"] == "甲区科学技术局" and jia21["meta"]["year"] == 2021
        return
    assert list(rows[0].keys()) == wide_columns()
    assert float(seed["appeal.review.upheld"]) == 0
    assert seed["appeal.review.upheld:review"] == "corrected" and seed["appeal.review.upheld:reviewer"] == "alice"
    assert seed["appeal.review.total:review"] == "needs_review"
    assert seed["apply.new.natural_person:review"] == "ok"
    assert jia21["apply.carried_in.total:review"] == "needs_review"
    assert float(jia21["apply.carried_in.total"]) == 3 and int(jia21["year"]) == 2021
    assert jia21["organ"] == "甲区科学技术局"


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_long_one_row_per_field(tmp_path, store, fmt):
    docs = _collection(tmp_path, store)
    out = tmp_path / f"long.{fmt}"
    n = export_results(store, out, fmt, "long")
    rows = _read(out, fmt)
    assert n == len(rows) and n >= 3 * 198
    assert {"document_id", "key", "value", "confidence", "review", "reviewer"} <= set(rows[0])
    jia = [r for r in rows if int(r["document_id"]) == docs["jia-2021.txt"] and r["key"] == "apply.carried_in.total"]
    assert len(jia) == 1 and jia[0]["review"] == "needs_review" and "上年结转" in jia[0]["reasons"]


def test_export_parquet_schema_is_stable_even_for_an_empty_store(tmp_path, store):
    import pyarrow.parquet as pq
    export_results(store, tmp_path / "empty.parquet", "parquet", "wide")
    export_results(store, tmp_path / "empty-long.parquet", "parquet", "long")
    assert pq.read_schema(tmp_path / "empty.parquet").equals(wide_schema(), check_metadata=True)
    assert pq.read_schema(tmp_path / "empty-long.parquet").equals(long_schema(), check_metadata=True)
    _collection(tmp_path, store)
    export_results(store, tmp_path / "full.parquet", "parquet", "wide")
    assert pq.read_schema(tmp_path / "full.parquet").equals(wide_schema(), check_metadata=True)
    assert len(canonical_keys()) == len(set(canonical_keys())) > 200


def test_export_xlsx_colours_review_state(tmp_path, store):
    from openpyxl import load_workbook
    docs = _collection(tmp_path, store)
    export_results(store, tmp_path / "w.xlsx", "xlsx", "wide")
    ws = load_workbook(tmp_path / "w.xlsx")["reports"]
    header = [c.value for c in ws[1]]
    col = header.index("appeal.review.total") + 1
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == docs["seed.txt"])
    assert ws.cell(row, col).fill.start_color.rgb.endswith(STATE_FILLS["needs_review"])
    ok_col = header.index("apply.new.natural_person") + 1
    assert ws.cell(row, ok_col).fill.fill_type is None
    assert "legend" in load_workbook(tmp_path / "w.xlsx").sheetnames


def test_export_batch_filter_and_atomic_write(tmp_path, store):
    _collection(tmp_path, store)
    out = tmp_path / "b.csv"
    assert export_results(store, out, "csv", "wide", batch_id=999) == 0
    assert out.exists() and not list(tmp_path.glob(".b.tmp*"))
    with pytest.raises(ValueError):
        export_results(store, tmp_path / "x.doc", "doc")


def test_report_html_is_self_contained_and_shows_the_collection(tmp_path, store):
    docs = _collection(tmp_path, store)
    out = tmp_path / "report.html"
    data = write_report(store, out)
    html = out.read_text(encoding="utf-8")
    assert html.count("<svg") >= 4
    assert "<script" not in html and "src=" not in html and "https://" not in html and "http://" not in html
    assert "甲区科学技术局" in html and "carried over" in html
    assert data.status_counts == {"needs_review": 3, "failed": 1} or sum(data.status_counts.values()) == 4
    assert data.collection_counts.get("carried_over") == 2
    assert any(k.startswith("appeal.review") for k, _ in data.flagged_fields)
    organ = next(o for o in data.organs if o.organ == "甲区科学技术局")
    assert organ.years == [2020, 2021] and organ.received == [10, 4]
    assert organ.mix[0]["granted"] == 5                # 10 new + 0 carried in - 5 carried out
    assert gather(store, batch_id=1).documents == 4
    assert docs


def test_archive_and_export_on_postgresql(tmp_path, pg_store):
    import pyarrow.parquet as pq
    docs = _collection(tmp_path, pg_store)
    # a rerun over the same folder links everything, extracts nothing (dedupe by sha256)
    again = run_archive(pg_store, [tmp_path / "in"], workers=2)
    assert again.extracted_now == 0
    for fmt in FORMATS:
        n = export_results(pg_store, tmp_path / f"pg.{fmt}", fmt, "wide")
        assert n == 4                                  # 3 reports + the junk file's failed document
    table = pq.read_table(tmp_path / "pg.parquet")
    assert table.schema.equals(wide_schema(), check_metadata=True)
    row = [r for r in table.to_pylist() if r["document_id"] == docs["jia-2021.txt"]][0]
    assert row["apply.carried_in.total:review"] == "needs_review"
    write_report(pg_store, tmp_path / "pg.html")
