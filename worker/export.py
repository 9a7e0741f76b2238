"""``nianbao export``: the store's current values as a dataset (CSV, JSON Lines, Parquet, XLSX).

Two layouts:

- **wide**: one row per report; the report's columns (``document_id``, ``source``, ``sha256``,
  ``status``, ``error``, ``agency`` as printed, ``organ`` = the grouping name of
  ``worker.collection.organ_key``, ``year``, ``template``), then for every canonical key ``K``
  of either form (``canonical_keys()``, a fixed list: the columns never depend on the data)
  three columns ``K`` (value), ``K:review`` (review state) and ``K:reviewer``.
  JSON Lines wide is the output-contract object per report (``shared/spec/output.md``) plus
  ``id``, ``organ`` and, per field, ``review_state`` and ``reviewed_by``.
- **long**: one row per report and field: report columns, ``key``, ``value``, ``confidence``,
  ``review`` (state), ``reviewer``, ``reasons``, ``page``, ``text``.

Review state of a field: ``needs_review`` (flagged by the extractor, or by an open collection
check), ``confirmed`` / ``corrected`` / ``source_error`` (a reviewer's verdict), ``ok``
(not flagged, no decision). Parquet schemas are explicit (``wide_schema()``, ``long_schema()``):
values are ``float64`` (counts are whole numbers; 万元 amounts are decimals; both exact in a
double), so one schema serves every report.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

from sqlalchemy import select

from models.forms import build_form
from models.tables import BatchItem, Decision, Document, Extraction, Field, ReviewItem, User

from .collection import organ_key
from .store import Store

REVIEW_STATES = ("ok", "needs_review", "confirmed", "corrected", "source_error")
REPORT_COLUMNS = ("document_id", "source", "sha256", "status", "error", "agency", "organ", "year", "template")
LONG_COLUMNS = REPORT_COLUMNS[:2] + REPORT_COLUMNS[3:4] + REPORT_COLUMNS[5:] + (
    "key", "value", "confidence", "review", "reviewer", "reasons", "page", "text")
FINISHED = ("extracted", "needs_review", "failed")
# XLSX fills per review state (light tints, readable when printed).
STATE_FILLS = {"needs_review": "FFC7CE", "confirmed": "C6EFCE", "corrected": "BDD7EE", "source_error": "FFEB9C"}
STATUS_FILLS = {"failed": "D9D9D9", "needs_review": "FFC7CE", "extracted": "C6EFCE"}


@lru_cache(maxsize=1)
def canonical_keys() -> tuple[str, ...]:
    """Every canonical key of both forms and their layout variants, in form order (2019 first,
    then what only 2021 has). The wide layout's columns; stable across exports."""
    keys: dict[str, None] = {}
    for template in ("2019", "2021"):
        for single in (False, True):
            for key in build_form(template, single_other_row=single, org_subtotal=True).keys():
                keys.setdefault(key)
    return tuple(keys)


@dataclass(slots=True)
class ExportDoc:
    """One report as exported: its columns and its fields with review state and reviewer."""
    document_id: int
    source: str
    sha256: str
    status: str
    error: str | None
    agency: str | None
    organ: str | None
    year: int | None
    template: str | None
    result: dict[str, Any]
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    def report_row(self) -> dict[str, Any]:
        return {"document_id": self.document_id, "source": self.source, "sha256": self.sha256,
                "status": self.status, "error": self.error, "agency": self.agency, "organ": self.organ,
                "year": self.year, "template": self.template}


def iter_export_docs(store: Store, *, batch_id: int | None = None,
                     statuses: Sequence[str] | None = None) -> Iterator[ExportDoc]:
    """Current values of the chosen documents in id order, with review state and reviewer."""
    statuses = tuple(statuses or FINISHED)
    with store.session() as s:
        current = select(Document.current_extraction_id).where(Document.current_extraction_id.is_not(None))
        decided: dict[tuple[int, str], tuple[str, str | None]] = {}
        for ext_id, key, verdict, name in s.execute(
                select(Field.extraction_id, Field.key, Decision.verdict, User.name)
                .join(Decision, Decision.id == Field.decision_id)
                .outerjoin(User, User.id == Field.reviewed_by)
                .where(Field.decision_id.is_not(None), Field.extraction_id.in_(current))):
            decided[(ext_id, key)] = (verdict, name)
        open_items: dict[tuple[int, str], str] = {}
        for doc_id, key, reason in s.execute(
                select(ReviewItem.document_id, ReviewItem.field_key, ReviewItem.reason)
                .where(ReviewItem.kind == "collection", ReviewItem.state.in_(("open", "claimed")),
                       ReviewItem.field_key.is_not(None))):
            open_items.setdefault((doc_id, key), reason)

        q = (select(Document, Extraction)
             .outerjoin(Extraction, Extraction.id == Document.current_extraction_id)
             .where(Document.status.in_(statuses)).order_by(Document.id))
        if batch_id is not None:
            q = q.where(Document.id.in_(select(BatchItem.document_id).where(BatchItem.batch_id == batch_id)))
        for doc, ext in s.execute(q).yield_per(200):
            result = dict(ext.result or {}) if ext is not None else {}
            meta = result.get("meta") or {}
            agency = doc.agency or meta.get("agency")
            out = ExportDoc(doc.id, doc.filename, doc.sha256, doc.status, doc.error, agency,
                            organ_key(agency) if agency else None, doc.year or meta.get("year"),
                            doc.template or meta.get("template"), result)
            for key, f in (result.get("fields") or {}).items():
                verdict, reviewer = decided.get((ext.id, key), (None, None))
                if f.get("review") or (doc.id, key) in open_items:
                    state = "needs_review"
                else:
                    state = verdict or "ok"
                reasons = list(f.get("reasons") or [])
                if (doc.id, key) in open_items:
                    reasons.append(open_items[(doc.id, key)])
                out.fields[key] = {**f, "reasons": reasons, "review_state": state, "reviewed_by": reviewer}
            yield out


# --------------------------------------------------------------------------- rows

def wide_columns() -> list[str]:
    cols = list(REPORT_COLUMNS)
    for k in canonical_keys():
        cols += [k, f"{k}:review", f"{k}:reviewer"]
    return cols


def wide_row(doc: ExportDoc) -> dict[str, Any]:
    row = doc.report_row()
    for k in canonical_keys():
        f = doc.fields.get(k)
        row[k] = None if f is None else f.get("value")
        row[f"{k}:review"] = None if f is None else f["review_state"]
        row[f"{k}:reviewer"] = None if f is None else f.get("reviewed_by")
    return row


def long_rows(doc: ExportDoc) -> Iterator[dict[str, Any]]:
    base = {c: v for c, v in doc.report_row().items() if c in LONG_COLUMNS}
    for k, f in doc.fields.items():
        yield {**base, "key": k, "value": f.get("value"), "confidence": f.get("confidence"),
               "review": f["review_state"], "reviewer": f.get("reviewed_by"),
               "reasons": "; ".join(f.get("reasons") or []), "page": f.get("page"), "text": f.get("text")}


def contract_object(doc: ExportDoc) -> dict[str, Any]:
    """JSON Lines wide: the output-contract object plus id, organ and per-field review state."""
    out = dict(doc.result) if doc.result else {"source": doc.source, "sha256": doc.sha256, "status": doc.status,
                                               "error": doc.error, "meta": {}, "fields": {}, "checks": []}
    out["status"] = doc.status
    out["id"] = doc.document_id
    out["organ"] = doc.organ
    out["fields"] = doc.fields
    return out


# --------------------------------------------------------------------------- parquet schemas

def wide_schema():
    import pyarrow as pa
    cols = [pa.field("document_id", pa.int64(), nullable=False), pa.field("source", pa.string()),
            pa.field("sha256", pa.string()), pa.field("status", pa.string()), pa.field("error", pa.string()),
            pa.field("agency", pa.string()), pa.field("organ", pa.string()), pa.field("year", pa.int32()),
            pa.field("template", pa.string())]
    for k in canonical_keys():
        cols += [pa.field(k, pa.float64()), pa.field(f"{k}:review", pa.string()),
                 pa.field(f"{k}:reviewer", pa.string())]
    return pa.schema(cols, metadata={"nianbao.layout": "wide", "nianbao.schema": "1"})


def long_schema():
    import pyarrow as pa
    return pa.schema([
        pa.field("document_id", pa.int64(), nullable=False), pa.field("source", pa.string()),
        pa.field("status", pa.string()), pa.field("agency", pa.string()), pa.field("organ", pa.string()),
        pa.field("year", pa.int32()), pa.field("template", pa.string()), pa.field("key", pa.string()),
        pa.field("value", pa.float64()), pa.field("confidence", pa.float64()), pa.field("review", pa.string()),
        pa.field("reviewer", pa.string()), pa.field("reasons", pa.string()), pa.field("page", pa.int32()),
        pa.field("text", pa.string()),
    ], metadata={"nianbao.layout": "long", "nianbao.schema": "1"})


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


# --------------------------------------------------------------------------- writers

def _rows(docs: Iterator[ExportDoc], layout: str) -> Iterator[dict[str, Any]]:
    for doc in docs:
        if layout == "wide":
            yield wide_row(doc)
        else:
            yield from long_rows(doc)


def _write_csv(docs, out: Path, layout: str) -> int:
    cols = wide_columns() if layout == "wide" else list(LONG_COLUMNS)
    n = 0
    # utf-8-sig: Excel opens a BOM-marked CSV with the Chinese names intact.
    with open(out, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for row in _rows(docs, layout):
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
            n += 1
    return n


def _write_jsonl(docs, out: Path, layout: str) -> int:
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        if layout == "wide":
            for doc in docs:
                f.write(json.dumps(contract_object(doc), ensure_ascii=False) + "\n")
                n += 1
        else:
            for row in _rows(docs, layout):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    return n


def _write_parquet(docs, out: Path, layout: str, chunk: int = 500) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq
    schema = wide_schema() if layout == "wide" else long_schema()
    floats = {f.name for f in schema if pa.types.is_floating(f.type)}
    names = schema.names
    n = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        buf: list[dict[str, Any]] = []

        def flush() -> None:
            cols = {c: [(_float(r.get(c)) if c in floats else r.get(c)) for r in buf] for c in names}
            writer.write_table(pa.table(cols, schema=schema))
            buf.clear()

        for row in _rows(docs, layout):
            buf.append(row)
            n += 1
            if len(buf) >= chunk:
                flush()
        if buf or n == 0:
            flush()
    return n


def _write_xlsx(docs, out: Path, layout: str) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill

    fills = {s: PatternFill("solid", start_color=c, end_color=c) for s, c in STATE_FILLS.items()}
    status_fills = {s: PatternFill("solid", start_color=c, end_color=c) for s, c in STATUS_FILLS.items()}
    bold = Font(bold=True)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("reports" if layout == "wide" else "fields")
    ws.freeze_panes = "B2" if layout == "wide" else "A2"
    cols = wide_columns() if layout == "wide" else list(LONG_COLUMNS)

    def cell(value: Any, fill=None, font=None) -> WriteOnlyCell:
        c = WriteOnlyCell(ws, value=value)
        if fill is not None:
            c.fill = fill
        if font is not None:
            c.font = font
        return c

    ws.append([cell(c, font=bold) for c in cols])
    n = 0
    keys = canonical_keys()
    for row in _rows(docs, layout):
        n += 1
        if layout == "wide":
            out_row = [cell(row[c], status_fills.get(row["status"]) if c == "status" else None)
                       for c in REPORT_COLUMNS]
            for k in keys:
                state = row[f"{k}:review"]
                fill = fills.get(state)
                out_row += [cell(row[k], fill), cell(state, fill), cell(row[f"{k}:reviewer"])]
        else:
            fill = fills.get(row["review"])
            out_row = [cell(row[c], fill if c in ("key", "value", "review") else None) for c in cols]
        ws.append(out_row)
    legend = wb.create_sheet("legend")
    legend.append([cell("review state", font=bold), cell("meaning", font=bold)])
    meanings = {"ok": "not flagged; the value is promised right",
                "needs_review": "flagged (by the extractor or a collection check): a person must look",
                "confirmed": "a reviewer confirmed the printed value",
                "corrected": "a reviewer corrected the value",
                "source_error": "the organ's printed table is wrong; the printed value stands"}
    for state in REVIEW_STATES:
        legend.append([cell(state, fills.get(state)), cell(meanings[state])])
    wb.save(out)
    return n


WRITERS = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet, "xlsx": _write_xlsx}


def export_results(store: Store, out: Path | str, fmt: str, layout: str = "wide", *,
                   batch_id: int | None = None, statuses: Sequence[str] | None = None) -> int:
    """Write the dataset; returns the number of rows (reports for wide, fields for long).

    Written to a temporary name and renamed, so a crash never leaves a half file under ``out``."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(WRITERS)}")
    if layout not in ("wide", "long"):
        raise ValueError(f"unknown layout {layout!r}; use wide or long")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")    # keep the suffix: writers may check it
    try:
        n = WRITERS[fmt](iter_export_docs(store, batch_id=batch_id, statuses=statuses), tmp, layout)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return n
