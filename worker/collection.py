"""Collection-level checks: what no single report can show, only the archive as a whole.

1. **Across years** (relation 5 of ``shared/spec/canonical-fields.md``): one organ's
   ``apply.carried_in.<c>`` for year Y equals its ``apply.carried_out.<c>`` for Y−1 (上年结转 =
   last year's 结转下年度继续办理), for every applicant column ``c``.
2. **Duplicate reports**: two reports of the same organ and year whose numbers differ (a
   corrected re-publication, or a mis-read); identical numbers are a harmless duplicate.
3. **Organ names**: the same organ spelled differently (``上海市科委`` / ``上海市科学技术委员会``,
   spaces, 全角/半角) is grouped under one ``organ_key``; a spelling that differs by more than
   width or spacing gets a low-priority item so a person confirms the grouping.

The checks are pure functions over ``ReportValues`` (``find_violations``); ``run_collection_checks``
turns violations into ``review_items`` of kind ``collection`` and is idempotent: each violation has
a stable ``check_id`` (in the item's ``details``), an item that exists in any live or done state is
kept, and an open item whose violation is gone (a value was corrected) is superseded.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Iterable, Sequence

from sqlalchemy import select

from models.agencies import ABBREVIATIONS
from models.forms import APPLY_COLUMNS_SUBTOTAL
from models.tables import Document, Extraction, Field, ReviewItem, utcnow

from .store import Store, audit

APPLY_COLUMN_KEYS = tuple(c.key for c in APPLY_COLUMNS_SUBTOTAL)
PRIORITY_RELATION = 10      # same as a violated in-document relation (store.save_result)
PRIORITY_DUPLICATE = 8
PRIORITY_NAME = 1
LIVE_STATES = ("open", "claimed")

_GOVERNMENT = re.compile(r"(?<!人民)政府")
_PUNCT = re.compile(r"[\s\u3000·・•,，、.。:：;；\"'“”‘’《》〈〉<>\[\]【】()（）_\-—–]+")


# --------------------------------------------------------------------------- organ names

def organ_spelling(name: str) -> str:
    """The name with width and spacing differences removed (NFKC: 全角 -> 半角; no spaces or
    punctuation). Two names equal here are the same spelling for a person."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", name or ""))


def organ_key(name: str) -> str:
    """The grouping key of an organ, which reads as its official name: ``organ_spelling`` with
    common abbreviations written out (``models.agencies.ABBREVIATIONS``: 科委 -> 科学技术委员会)
    and 政府 as 人民政府 (洪泽区政府 is 洪泽区人民政府)."""
    s = organ_spelling(name)
    for short, full in ABBREVIATIONS.items():
        if s.endswith(short) and not s.endswith(full):
            s = s[: -len(short)] + full
        s = s.replace(short + "办公室", full + "办公室")
    return _GOVERNMENT.sub("人民政府", s)


# --------------------------------------------------------------------------- values

@dataclass(frozen=True, slots=True)
class ReportValues:
    """What the checks need of one finished document's current extraction."""
    document_id: int
    extraction_id: int | None
    source: str
    agency: str | None
    year: int | None
    template: str | None
    values: dict[str, Any]

    @property
    def organ(self) -> str:
        return organ_key(self.agency or "")


@dataclass(frozen=True, slots=True)
class Violation:
    """One collection-level problem, attached to one document (and field when there is one)."""
    kind: str                  # carried_over | duplicate_report | organ_name
    check_id: str              # stable identity: the same problem found again is the same item
    document_id: int
    field_key: str | None
    organ: str                 # display name of the organ group
    year: int | None
    reason: str                # one sentence for the reviewer
    priority: int
    details: dict[str, Any] = field(default_factory=dict)


def _display_names(reports: Sequence[ReportValues]) -> dict[str, str]:
    """organ key -> the spelling shown for the group (the most common; the longest on a tie)."""
    spellings: dict[str, Counter] = defaultdict(Counter)
    for r in reports:
        if r.agency:
            spellings[r.organ][organ_spelling(r.agency)] += 1
    return {k: max(c.items(), key=lambda kv: (kv[1], len(kv[0]), kv[0]))[0] for k, c in spellings.items()}


def group_by_organ_year(reports: Iterable[ReportValues]) -> dict[str, dict[int, list[ReportValues]]]:
    out: dict[str, dict[int, list[ReportValues]]] = defaultdict(lambda: defaultdict(list))
    for r in reports:
        if r.agency and r.year:
            out[r.organ][r.year].append(r)
    return out


def _fmt(v: Any) -> str:
    return "blank" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def carried_over_violations(reports: Sequence[ReportValues]) -> list[Violation]:
    """Relation 5: for each organ and consecutive years, carried_in(Y) == carried_out(Y−1).

    With several reports for a year (duplicates), a report of Y is flagged only when it agrees
    with none of the Y−1 reports: the duplicate check reports the disagreement itself."""
    names = _display_names(reports)
    out: list[Violation] = []
    for organ, years in group_by_organ_year(reports).items():
        for year in sorted(years):
            prev = years.get(year - 1)
            if not prev:
                continue
            for cur in years[year]:
                per_prev = []
                for p in prev:
                    bad = []
                    for c in APPLY_COLUMN_KEYS:
                        vin = cur.values.get(f"apply.carried_in.{c}")
                        vout = p.values.get(f"apply.carried_out.{c}")
                        if vin is None or vout is None:
                            continue          # blank or absent: not evaluated (flagged in-document)
                        if abs(float(vin) - float(vout)) > 1e-9:
                            bad.append((c, vin, vout))
                    per_prev.append((p, bad))
                if any(not bad for _, bad in per_prev):
                    continue
                p, bad = per_prev[0]
                for c, vin, vout in bad:
                    key = f"apply.carried_in.{c}"
                    out.append(Violation(
                        "carried_over", f"carried_over:{cur.document_id}:{p.document_id}:{c}", cur.document_id,
                        key, names.get(organ, organ), year,
                        f"{key} = {_fmt(vin)} in the {year} report, but the {year - 1} report "
                        f"(document {p.document_id}) carries out apply.carried_out.{c} = {_fmt(vout)}; "
                        "上年结转 must equal last year's 结转下年度继续办理, so one of them is wrong.",
                        PRIORITY_RELATION,
                        {"relation": "carried_over", "column": c, "value": vin, "previous_value": vout,
                         "previous_document_id": p.document_id, "previous_key": f"apply.carried_out.{c}",
                         "keys": [key, f"apply.carried_out.{c}"]}))
    return out


def duplicate_report_violations(reports: Sequence[ReportValues], max_listed: int = 5) -> list[Violation]:
    """Reports of the same organ and year whose numbers differ: an item on each of the pair."""
    names = _display_names(reports)
    out: list[Violation] = []
    for organ, years in group_by_organ_year(reports).items():
        for year, group in sorted(years.items()):
            for a, b in combinations(sorted(group, key=lambda r: r.document_id), 2):
                diff = []
                for k in a.values.keys() & b.values.keys():
                    va, vb = a.values[k], b.values[k]
                    if va is not None and vb is not None and abs(float(va) - float(vb)) > 1e-9:
                        diff.append((k, va, vb))
                if not diff:
                    continue
                diff.sort()
                listed = ", ".join(f"{k} {_fmt(va)} vs {_fmt(vb)}" for k, va, vb in diff[:max_listed])
                more = f" and {len(diff) - max_listed} more" if len(diff) > max_listed else ""
                for me, other in ((a, b), (b, a)):
                    out.append(Violation(
                        "duplicate_report", f"duplicate:{a.document_id}:{b.document_id}:{me.document_id}",
                        me.document_id, None, names.get(organ, organ), year,
                        f"Two reports of {names.get(organ, organ)} for {year} (documents {a.document_id} and "
                        f"{b.document_id}) disagree on {len(diff)} field(s): {listed}{more}; "
                        "decide which one is the organ's report.",
                        PRIORITY_DUPLICATE,
                        {"relation": "duplicate_report", "other_document_id": other.document_id,
                         "differences": [[k, va, vb] for k, va, vb in diff]}))
    return out


def organ_name_violations(reports: Sequence[ReportValues]) -> list[Violation]:
    """A report whose organ spelling differs from its group's by more than width or spacing."""
    names = _display_names(reports)
    counts = Counter(r.organ for r in reports if r.agency)
    out: list[Violation] = []
    for r in reports:
        if not r.agency or counts[r.organ] < 2:
            continue
        shown = names[r.organ]
        if organ_spelling(r.agency) == shown:
            continue
        out.append(Violation(
            "organ_name", f"organ_name:{r.document_id}:{r.organ}", r.document_id, None, shown, r.year,
            f"Organ printed as “{r.agency}”, grouped with “{shown}” ({counts[r.organ]} reports) for the "
            "cross-year checks; confirm they are the same organ.",
            PRIORITY_NAME, {"relation": "organ_name", "printed": r.agency, "grouped_as": shown,
                            "organ_key": r.organ}))
    return out


def find_violations(reports: Sequence[ReportValues]) -> list[Violation]:
    """Every collection-level violation, in a stable order."""
    return carried_over_violations(reports) + duplicate_report_violations(reports) + organ_name_violations(reports)


# --------------------------------------------------------------------------- the store side

def load_reports(store: Store, batch_id: int | None = None) -> list[ReportValues]:
    """Finished, non-failed documents with their current values (all of the store by default:
    relation 5 spans archive runs)."""
    from models.tables import BatchItem
    out = []
    with store.session() as s:
        q = (select(Document.id, Document.filename, Document.agency, Document.year, Document.template,
                    Extraction.id, Extraction.result)
             .join(Extraction, Extraction.id == Document.current_extraction_id)
             .where(Document.status.in_(("extracted", "needs_review"))).order_by(Document.id))
        if batch_id is not None:
            q = q.where(Document.id.in_(select(BatchItem.document_id).where(BatchItem.batch_id == batch_id)))
        for doc_id, filename, agency, year, template, ext_id, result in s.execute(q).yield_per(500):
            fields = (result or {}).get("fields", {})
            meta = (result or {}).get("meta", {}) or {}
            out.append(ReportValues(doc_id, ext_id, filename, agency or meta.get("agency"),
                                    year or meta.get("year"), template or meta.get("template"),
                                    {k: f.get("value") for k, f in fields.items()}))
    return out


@dataclass(slots=True)
class CollectionResult:
    violations: list[Violation]
    created: int = 0
    kept: int = 0
    superseded: int = 0
    reports: int = 0

    def summary_line(self) -> str:
        by_kind = Counter(v.kind for v in self.violations)
        kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(by_kind.items())) or "none"
        return (f"{self.reports} reports; violations: {kinds}; review items {self.created} new, "
                f"{self.kept} kept, {self.superseded} superseded")


def run_collection_checks(store: Store) -> CollectionResult:
    """Find every violation in the store and sync the ``collection`` review items with them."""
    reports = load_reports(store)
    violations = find_violations(reports)
    result = CollectionResult(violations, reports=len(reports))
    ext_of = {r.document_id: r.extraction_id for r in reports}
    wanted = {v.check_id: v for v in violations}
    with store.session() as s:
        existing: dict[str, ReviewItem] = {}
        for item in s.scalars(select(ReviewItem).where(ReviewItem.kind == "collection").order_by(ReviewItem.id)):
            cid = (item.details or {}).get("check_id")
            if cid and item.state != "superseded":
                existing[cid] = item
        now = utcnow()
        for cid, item in existing.items():
            if cid not in wanted and item.state in LIVE_STATES:
                item.state, item.resolved_at = "superseded", now
                result.superseded += 1
        for cid, v in wanted.items():
            if cid in existing:
                result.kept += 1
                continue
            ext_id = ext_of.get(v.document_id)
            field_id = None
            if v.field_key and ext_id:
                field_id = s.scalar(select(Field.id).where(Field.extraction_id == ext_id, Field.key == v.field_key))
            s.add(ReviewItem(document_id=v.document_id, extraction_id=ext_id, field_id=field_id,
                             field_key=v.field_key, kind="collection", reason=v.reason, priority=v.priority,
                             state="open", details={**v.details, "check_id": cid, "check": v.kind,
                                                    "organ": v.organ, "year": v.year}))
            result.created += 1
        if result.created or result.superseded:
            audit(s, "collection_checks", "review_items", None, actor="archive",
                  new={"created": result.created, "superseded": result.superseded, "kept": result.kept})
    return result
