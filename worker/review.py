"""The review queue (issue 5): flagged fields to people, their verdicts back into the values.

Built on the store (``worker/store.py``: ``record_decision``, ``fingerprint``, ``audit``) and its
tables; everything here is plain functions taking a ``Store`` (no state, no class).

- **Queue.** One ``review_items`` row per flagged field of a document's current extraction
  (opened by ``Store.save_result``), plus spot checks. ``after_extraction`` re-runs the relations
  and sets priorities: a field whose value would unblock a relation (pin other cells, complete a
  check) or sits in a violated one comes first. ``claim_next`` hands out one item with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises writers with
  ``BEGIN IMMEDIATE``) and a conditional ``UPDATE`` as the guard, so no item goes to two
  reviewers; ``claim_document_items`` takes the rest of that document so ``j``/``k`` can move
  within it. Filters: agency, year, reason (substring).
- **Verdicts** (``decide``): ``confirmed`` (value stands), ``corrected`` (new value),
  ``source_error`` (the organ's own table is wrong as printed: the printed value stands and the
  violated relation is marked as the source's fault), and "blank as printed" (``confirmed``
  with the null value and the note ``blank as printed``). The store keys the decision by the
  fingerprint (document sha256, key, printed text), writes a new extraction version and the
  audit record; then the relations are re-run on that version: cells the relations now pin are
  filled (and unflagged), cells in a newly violated relation are flagged, and the document is
  ``extracted`` once nothing is flagged.
- **Spot checks** (``queue_spot_checks``): a configurable few percent of unflagged fields per
  batch; ``quality_report`` turns their verdicts into the measured silent-error rate.
- **Learning** (``learn_label``): a reviewer confirms that a printed row label means a row; the
  variant goes into the per-installation rule file ``NIANBAO_RULES`` (JSON, version bumped,
  history kept), which ``extractors.mapping.matcher_for`` reads on the next extraction.
- **Exports** (``export_document``): the output contract plus, per reviewed field,
  ``reviewed_by`` / ``verdict`` / ``reviewed_at``.
"""
from __future__ import annotations

import ast
import json
import math
import os
import random
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from models.forms import (ACTIVE_2019, ACTIVE_2021, APPEAL_GROUPS, APPEAL_RESULTS, APPLY_2019, APPLY_2021,
                          Form, Relation, RowSpec, build_form)
from models.tables import (AuditLog, BatchItem, Decision, Document, Extraction, Field, ReviewItem, User,
                           utcnow)

from .store import Principal, Store, audit

VERDICTS = ("confirmed", "corrected", "source_error")
BLANK_NOTE = "blank as printed"
SPOT_REASON = "spot check: an unflagged field sampled to measure silent errors"


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """| variable | default | meaning |
    | ``NIANBAO_SPOT_CHECK_PERCENT`` | 2 | percent of each batch's unflagged fields queued as spot checks |
    | ``NIANBAO_LEARN_MIN_VOTES`` | 1 | reviewers who must confirm a label variant before it is learned |
    | ``NIANBAO_RULES`` | ``$NIANBAO_HOME/rules.json`` | the per-installation rule file (learned label variants) |
    | ``NIANBAO_CLAIM_MINUTES`` | 30 | a claim older than this is up for grabs again |
    | ``NIANBAO_SESSION_HOURS`` | 12 | lifetime of a reviewer's browser session |
    """
    spot_check_percent: float
    learn_min_votes: int
    rules_file: Path
    claim_minutes: float
    session_hours: float


def review_settings(env: dict | None = None) -> ReviewSettings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("NIANBAO_HOME") or Path.home() / ".local" / "share" / "nianbao").expanduser()

    def num(name: str, default: float) -> float:
        try:
            return float(env.get(name) or default)
        except ValueError:
            raise SystemExit(f"{name}={env.get(name)!r} is not a number; set it to a number or unset it.")

    return ReviewSettings(
        spot_check_percent=num("NIANBAO_SPOT_CHECK_PERCENT", 2.0),
        learn_min_votes=max(1, int(num("NIANBAO_LEARN_MIN_VOTES", 1))),
        rules_file=Path(env.get("NIANBAO_RULES") or home / "rules.json").expanduser(),
        claim_minutes=num("NIANBAO_CLAIM_MINUTES", 30),
        session_hours=num("NIANBAO_SESSION_HOURS", 12),
    )


class ReviewError(Exception):
    """An expected refusal (not a bug): ``code`` is stable, ``message`` one sentence for the user,
    ``status`` the HTTP status the web layer answers with."""

    def __init__(self, code: str, message: str, status: int = 409):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# --------------------------------------------------------------------------- the form as data

_ROWS: dict[str, RowSpec] = {}
for _r in ACTIVE_2019 + ACTIVE_2021:
    _ROWS.setdefault(f"active.{_r.key}", _r)
for _r in APPLY_2019 + APPLY_2021:
    _ROWS.setdefault(f"apply.{_r.key}", _r)
_APPLY_COL_LABELS = {"natural_person": "自然人", "commercial": "商业企业", "research": "科研机构",
                     "nonprofit": "社会公益组织", "legal_services": "法律服务机构", "other_org": "其他",
                     "org_subtotal": "小计", "total": "总计"}


def form_for(meta: dict[str, Any], keys: Iterable[str]) -> Form:
    """The form a stored result was extracted with, recovered from its template and its keys
    (layout variants: a single （六）其他处理 row in a 2021 report, the 小计 column)."""
    keys = set(keys)
    template = (meta or {}).get("template") or "2019"
    single_other = template == "2021" and any(k.startswith("apply.other.") and k.count(".") == 2 and
                                              k.split(".")[2] in _APPLY_COL_LABELS for k in keys)
    org_subtotal = any(k.endswith(".org_subtotal") for k in keys)
    try:
        return build_form(template, single_other_row=single_other, org_subtotal=org_subtotal)
    except ValueError:
        return build_form("2019")


def row_key(key: str) -> str:
    """The rule-file row key of a field key: the field key without its column."""
    return key.rsplit(".", 1)[0]


def key_labels(key: str, form: Form | None = None) -> dict[str, str]:
    """The form's Chinese wording of a key: table, row and column labels."""
    if key.startswith("appeal."):
        _, g, r = key.split(".")
        group = next((c.label for c in APPEAL_GROUPS if c.key == g), g)
        result = next((c.label for c in APPEAL_RESULTS if c.key == r), r)
        table = "政府信息公开行政复议、行政诉讼情况"
        return {"table": table, "row": group, "column": result}
    row, col = key.rsplit(".", 1)
    spec = _ROWS.get(row)
    if key.startswith("active."):
        label = col
        for c in (spec.columns if spec else ()):
            if c.key == col:
                label = c.label
        return {"table": "主动公开政府信息情况", "row": spec.label if spec else row, "column": label}
    return {"table": "收到和处理政府信息公开申请情况", "row": spec.label if spec else row,
            "column": _APPLY_COL_LABELS.get(col, col)}


def relations_of(form: Form, key: str) -> list[Relation]:
    return [r for r in form.relations if key in r.keys]


# --------------------------------------------------------------------------- relations and priority

def _unknown(f: dict[str, Any]) -> bool:
    return f.get("value") is None or bool(f.get("review"))


def priorities(fields: dict[str, dict[str, Any]], form: Form, checks: list[dict[str, Any]]) -> dict[str, int]:
    """Priority of each flagged field (higher first): a field in a violated relation, a field
    whose value would pin another cell or complete a relation, a total whose zero pins its parts."""
    violated = {k for c in checks if c.get("ok") is False and not c.get("source_error") for k in c.get("keys", [])}
    out: dict[str, int] = {}
    for key, f in fields.items():
        if not f.get("review"):
            continue
        p = 50 if key in violated else 0
        for rel in relations_of(form, key):
            unknown = [k for k in rel.keys if k in fields and _unknown(fields[k])]
            if key not in unknown:
                continue
            if len(unknown) == 1:
                p += 15          # resolving it completes the check
            elif len(unknown) == 2:
                p += 20          # resolving it pins the other cell
            side = rel.lhs if key in rel.lhs else rel.rhs
            if len(side) == 1 and len(unknown) > 2:
                p += 10          # a total: if it is 0, every part is pinned
        out[key] = p
    return out


def _rerun(data: dict[str, Any], decided: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Re-run the relations on a result dict (changed in place). ``decided`` maps reviewed keys
    to their verdict. Returns the new checks and, per changed key, what happened (for the audit).

    - an unknown, undecided, flagged cell the relations pin gets the value and is unflagged;
    - a violated relation holding a ``source_error`` cell is marked ``source_error``; a cell
      flagged only for such relations is unflagged (the printed value stands);
    - an unflagged, undecided cell in a violated relation (not the source's) is flagged.
    """
    from extractors.validation import evaluate, pin

    fields = data["fields"]
    form = form_for(data.get("meta") or {}, fields)
    rels = [r for r in form.relations if all(k in fields for k in r.keys)]
    values = {k: f.get("value") for k, f in fields.items()}
    pinned = pin(rels, values)
    changed: dict[str, list[str]] = {}
    for k, (v, label) in pinned.items():
        f = fields.get(k)
        if f is None or k in decided or not f.get("review") or f.get("value") is not None:
            continue
        f["value"] = v
        f["review"] = False
        f["confidence"] = max(float(f.get("confidence") or 0), 0.93)
        f["reasons"] = list(f.get("reasons") or []) + [f"pinned to {v} by relation {label} after review"]
        changed.setdefault(k, []).append(f"pinned to {v} by {label}")
    for k in decided:
        f = fields.get(k)
        if f is not None and float(f.get("confidence") or 0) < 1.0:
            f["confidence"] = 1.0       # a person looked at it: the value is the reviewer's word
    values = {k: f.get("value") for k, f in fields.items()}
    checks = [evaluate(r, values).to_dict() for r in rels]
    source_keys = {k for k, v in decided.items() if v == "source_error"}
    for c in checks:
        if c["ok"] is False and source_keys & set(c["keys"]):
            c["source_error"] = True
            c["detail"] = (c.get("detail", "") + "; the organ's own table is wrong as printed "
                           "(confirmed by a reviewer)").lstrip("; ")
    blamed = {f"{c['relation']}[{_scope(c)}]" for c in checks if c.get("source_error")}
    holds = {f"{c['relation']}[{_scope(c)}]" for c in checks if c["ok"] is True}
    bad = [c for c in checks if c["ok"] is False and not c.get("source_error")]
    for k, f in fields.items():
        if k in decided or not f.get("review") or f.get("value") is None:
            continue
        # a cell flagged only because relations were violated: once each of them holds again
        # (a correction elsewhere) or is blamed on the source, the printed value stands
        rs = [r for r in f.get("reasons") or [] if r.startswith("relation ") and " violated" in r]
        others = [r for r in f.get("reasons") or [] if r not in rs]
        names = {r.split(" ")[1] for r in rs}
        if rs and not others and names <= (blamed | holds):
            f["review"] = False
            f["confidence"] = max(float(f.get("confidence") or 0), 0.9)
            why = ("the relation is the source's own error (reviewer): printed value stands"
                   if names & blamed else "the relation holds after review")
            f["reasons"] = rs + [why]
            changed.setdefault(k, []).append(why)
    for c in bad:
        for k in c["keys"]:
            f = fields.get(k)
            if f is None or k in decided or f.get("review"):
                continue
            f["review"] = True
            f["confidence"] = min(float(f.get("confidence") or 0), 0.4)
            f["reasons"] = list(f.get("reasons") or []) + [
                f"relation {c['relation']}[{_scope(c)}] violated after review: {c.get('detail', '')}"]
            changed.setdefault(k, []).append(f"flagged: {c['relation']}[{_scope(c)}] violated")
    data["checks"] = checks
    if data.get("status") != "failed":
        data["status"] = "needs_review" if any(f.get("review") for f in fields.values()) else "extracted"
    return checks, changed


def _scope(check: dict[str, Any]) -> str:
    return str(check.get("row") or check.get("group") or check.get("column") or check.get("scope") or "")


def _decided_keys(s: Session, ext: Extraction) -> dict[str, str]:
    ids = {f.key: f.decision_id for f in ext.fields if f.decision_id}
    if not ids:
        return {}
    verdicts = dict(s.execute(select(Decision.id, Decision.verdict).where(Decision.id.in_(list(ids.values())))).all())
    return {k: verdicts.get(d, "confirmed") for k, d in ids.items()}


def _copy_json(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _apply_to_version(s: Session, doc: Document, ext: Extraction, data: dict[str, Any],
                      changed: dict[str, list[str]], *, new_version: bool, user_id: int | None,
                      actor: str) -> Extraction:
    """Write a re-run's result: in place on ``ext`` (the version this same review step just
    made, or when only the derived checks changed) or as a new ``kind='review'`` version."""
    if new_version and changed:
        version = (s.scalar(select(func.max(Extraction.version)).where(Extraction.document_id == doc.id)) or 0) + 1
        new = Extraction(document_id=doc.id, version=version, kind="review", based_on_id=ext.id,
                         extractor_version=ext.extractor_version, status=data["status"], error=ext.error,
                         error_code=ext.error_code, source=ext.source, format=ext.format, pages=ext.pages,
                         seconds=ext.seconds, meta=data["meta"], checks=data["checks"], result=data,
                         created_by=user_id)
        s.add(new)
        s.flush()
        prev = {f.key: f for f in ext.fields}
        for pos, (k, f) in enumerate(data["fields"].items()):
            p = prev.get(k)
            s.add(Field(extraction_id=new.id, position=pos, key=k, value=f["value"], confidence=f["confidence"],
                        review=f["review"], reasons=f["reasons"], page=f["page"], bbox=f["bbox"],
                        text=f.get("text") or "", decision_id=p.decision_id if p else None,
                        reviewed_by=p.reviewed_by if p else None))
        s.execute(update(ReviewItem).where(ReviewItem.document_id == doc.id,
                                           ReviewItem.extraction_id == ext.id).values(extraction_id=new.id))
        doc.current_extraction_id = new.id
        target = new
    else:
        ext.result = data
        ext.checks = data["checks"]
        ext.status = data["status"]
        for f in ext.fields:
            nf = data["fields"].get(f.key)
            if nf is not None and (f.value, f.review, f.confidence, f.reasons) != (
                    nf["value"], nf["review"], nf["confidence"], nf["reasons"]):
                f.value, f.review, f.confidence, f.reasons = nf["value"], nf["review"], nf["confidence"], nf["reasons"]
        target = ext
    s.flush()
    by_key = {f.key: f for f in target.fields}
    for k, what in changed.items():
        f = data["fields"][k]
        if f["review"]:
            open_ = s.scalar(select(func.count()).select_from(ReviewItem).where(
                ReviewItem.document_id == doc.id, ReviewItem.field_key == k, ReviewItem.kind == "flagged",
                ReviewItem.state.in_(("open", "claimed"))))
            if not open_:
                s.add(ReviewItem(document_id=doc.id, extraction_id=target.id, field_id=by_key[k].id, field_key=k,
                                 kind="flagged", reason="; ".join(f["reasons"]), state="open"))
        else:
            s.execute(update(ReviewItem).where(
                ReviewItem.document_id == doc.id, ReviewItem.field_key == k, ReviewItem.kind == "flagged",
                ReviewItem.state.in_(("open", "claimed"))).values(
                state="done", resolved_at=utcnow(), details={"resolution": "; ".join(what)}))
        audit(s, "relation_rerun", "field", None, document_id=doc.id, field_key=k, user_id=user_id, actor=actor,
              new=f["value"], reason="; ".join(what))
    if doc.status != "failed":
        doc.status = data["status"]
    return target


def _set_priorities(s: Session, doc_id: int, data: dict[str, Any]) -> None:
    form = form_for(data.get("meta") or {}, data["fields"])
    pr = priorities(data["fields"], form, data.get("checks") or [])
    for item in s.scalars(select(ReviewItem).where(ReviewItem.document_id == doc_id, ReviewItem.kind == "flagged",
                                                   ReviewItem.state.in_(("open", "claimed")))):
        p = pr.get(item.field_key or "", 0)
        if item.priority != p:
            item.priority = p


def rerun_relations(store: Store, document_id: int, *, new_version: bool = True, user_id: int | None = None,
                    actor: str = "review") -> dict[str, Any]:
    """Re-run the relations on the document's current version and reset the queue priorities.

    ``new_version``: values or flags that change go into a new version (after a re-extraction);
    ``decide`` passes False because the store's ``record_decision`` just made the version this
    step completes. Returns ``{"status", "changed": {key: [what]}}``."""
    with store.session() as s:
        doc = s.get(Document, document_id, with_for_update=True)
        if doc is None or not doc.current_extraction_id:
            raise ReviewError("not_found", f"Document {document_id} has no extraction yet.", 404)
        ext = s.get(Extraction, doc.current_extraction_id)
        if not ext.result or ext.status == "failed" or not ext.result.get("fields"):
            return {"status": doc.status, "changed": {}}
        data = _copy_json(ext.result)
        decided = _decided_keys(s, ext)
        _, changed = _rerun(data, decided)
        _apply_to_version(s, doc, ext, data, changed, new_version=new_version, user_id=user_id, actor=actor)
        _set_priorities(s, doc.id, data)
        return {"status": doc.status, "changed": changed}


def after_extraction(store: Store, document_id: int, *, spot_check_percent: float | None = None,
                     batch_id: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """Call after ``Store.save_result``: re-run the relations (pins from re-applied decisions),
    set priorities and, unless ``spot_check_percent`` is 0, queue spot checks for this document
    (for a whole batch prefer ``queue_spot_checks_for_batch`` at the batch's end)."""
    out = rerun_relations(store, document_id, new_version=True, actor="review")
    if spot_check_percent:
        out["spot_checks"] = queue_spot_checks(store, [document_id], spot_check_percent, batch_id=batch_id, seed=seed)
    return out


# --------------------------------------------------------------------------- the queue

def _item_dict(item: ReviewItem, doc: Document | None = None) -> dict[str, Any]:
    d = {"id": item.id, "document_id": item.document_id, "extraction_id": item.extraction_id,
         "field_key": item.field_key, "kind": item.kind, "reason": item.reason, "priority": item.priority,
         "state": item.state, "claimed_by": item.claimed_by,
         "claimed_at": item.claimed_at.isoformat() if item.claimed_at else None,
         "decision_id": item.decision_id, "details": item.details or {}}
    if doc is not None:
        d.update(agency=doc.agency, year=doc.year, filename=doc.filename, document_status=doc.status)
    return d


def _open_condition(now: datetime, stale_after: timedelta):
    return or_(ReviewItem.state == "open",
               (ReviewItem.state == "claimed") & (ReviewItem.claimed_at < now - stale_after))


def _filtered(q, *, agency: str | None, year: int | None, reason: str | None, kinds: Sequence[str]):
    q = q.where(ReviewItem.kind.in_(list(kinds)))
    if agency:
        q = q.where(Document.agency.contains(agency))
    if year:
        q = q.where(Document.year == int(year))
    if reason:
        q = q.where(ReviewItem.reason.contains(reason))
    return q


def claim_next(store: Store, user_id: int, *, agency: str | None = None, year: int | None = None,
               reason: str | None = None, kinds: Sequence[str] = ("flagged", "spot_check"),
               prefer_document: int | None = None, stale_after: timedelta = timedelta(minutes=30),
               ) -> dict[str, Any] | None:
    """Hand the best open item to ``user_id``; None when nothing matches.

    Items the user already holds come back first (a reload resumes); then the preferred document
    (the one being reviewed), then by priority, document, id. PostgreSQL: the candidate row is
    locked with ``FOR UPDATE SKIP LOCKED``, so concurrent reviewers each get a different row
    without waiting; on every backend the ``UPDATE ... WHERE state = <as read>`` is the guard."""
    held = my_items(store, user_id, document_id=prefer_document)
    if not held and prefer_document is not None:
        held = my_items(store, user_id)
    if held:
        return held[0]
    for _ in range(50):
        now = utcnow()
        with store.session() as s:
            q = select(ReviewItem).join(Document, Document.id == ReviewItem.document_id).where(
                _open_condition(now, stale_after))
            q = _filtered(q, agency=agency, year=year, reason=reason, kinds=kinds)
            order = [ReviewItem.priority.desc(), ReviewItem.document_id, ReviewItem.id]
            if prefer_document is not None:
                order.insert(0, (ReviewItem.document_id != prefer_document))
            q = q.order_by(*order).limit(1)
            if s.bind.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True, of=ReviewItem)
            item = s.scalar(q)
            if item is None:
                return None
            rc = s.execute(update(ReviewItem).where(
                ReviewItem.id == item.id, ReviewItem.state == item.state,
                or_(ReviewItem.claimed_at == None, ReviewItem.claimed_at == item.claimed_at),  # noqa: E711
            ).values(state="claimed", claimed_by=user_id, claimed_at=now)).rowcount
            if rc == 1:
                item.state, item.claimed_by, item.claimed_at = "claimed", user_id, now
                return _item_dict(item, s.get(Document, item.document_id))
    return None


def claim_document_items(store: Store, user_id: int, document_id: int, *,
                         kinds: Sequence[str] = ("flagged", "spot_check"),
                         stale_after: timedelta = timedelta(minutes=30)) -> int:
    """Also take every other open item of ``document_id`` (so the reviewer walks the document's
    fields with ``j``/``k``); items another reviewer holds stay theirs. Returns how many."""
    now = utcnow()
    with store.session() as s:
        q = select(ReviewItem.id).where(ReviewItem.document_id == document_id, ReviewItem.kind.in_(list(kinds)),
                                        _open_condition(now, stale_after))
        if s.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        ids = list(s.scalars(q))
        if not ids:
            return 0
        return s.execute(update(ReviewItem).where(ReviewItem.id.in_(ids), _open_condition(now, stale_after))
                         .values(state="claimed", claimed_by=user_id, claimed_at=now)).rowcount


def my_items(store: Store, user_id: int, document_id: int | None = None) -> list[dict[str, Any]]:
    """The items ``user_id`` holds, in review order (priority, then id)."""
    with store.session() as s:
        q = (select(ReviewItem, Document).join(Document, Document.id == ReviewItem.document_id)
             .where(ReviewItem.state == "claimed", ReviewItem.claimed_by == user_id)
             .order_by(ReviewItem.document_id, ReviewItem.priority.desc(), ReviewItem.id))
        if document_id is not None:
            q = q.where(ReviewItem.document_id == document_id)
        return [_item_dict(i, d) for i, d in s.execute(q)]


def document_items(store: Store, document_id: int) -> list[dict[str, Any]]:
    """Every item of a document (any state), in review order."""
    with store.session() as s:
        q = (select(ReviewItem, Document).join(Document, Document.id == ReviewItem.document_id)
             .where(ReviewItem.document_id == document_id, ReviewItem.state != "superseded")
             .order_by(ReviewItem.priority.desc(), ReviewItem.id))
        return [_item_dict(i, d) for i, d in s.execute(q)]


def release(store: Store, item_id: int, user_id: int) -> bool:
    """Give one claimed item back (``Store.release_review_item``)."""
    return store.release_review_item(item_id, user_id)


def release_all(store: Store, user_id: int, document_id: int | None = None) -> int:
    with store.session() as s:
        q = update(ReviewItem).where(ReviewItem.state == "claimed", ReviewItem.claimed_by == user_id)
        if document_id is not None:
            q = q.where(ReviewItem.document_id == document_id)
        return s.execute(q.values(state="open", claimed_by=None, claimed_at=None)).rowcount


def queue_summary(store: Store, *, agency: str | None = None, year: int | None = None,
                  reason: str | None = None) -> dict[str, Any]:
    """Counts for the page header: open / claimed items per kind, documents waiting, and the
    most common reasons (for the filter)."""
    with store.session() as s:
        base = select(ReviewItem.kind, ReviewItem.state, func.count()).join(
            Document, Document.id == ReviewItem.document_id).group_by(ReviewItem.kind, ReviewItem.state)
        base = _filtered(base, agency=agency, year=year, reason=reason, kinds=("flagged", "spot_check", "collection"))
        counts: dict[str, dict[str, int]] = {}
        for kind, state, n in s.execute(base):
            counts.setdefault(kind, {})[state] = n
        docs = s.scalar(_filtered(select(func.count(func.distinct(ReviewItem.document_id))).join(
            Document, Document.id == ReviewItem.document_id).where(ReviewItem.state.in_(("open", "claimed"))),
            agency=agency, year=year, reason=reason, kinds=("flagged", "spot_check"))) or 0
        reasons: dict[str, int] = {}
        for (r,) in s.execute(select(ReviewItem.reason).where(ReviewItem.state.in_(("open", "claimed")))):
            for part in (r or "").split("; "):
                short = re.sub(r"[:(].*$", "", part).strip()
                if short:
                    reasons[short] = reasons.get(short, 0) + 1
        return {"counts": counts, "documents": docs,
                "open": sum(c.get("open", 0) for c in counts.values()),
                "reasons": sorted(reasons.items(), key=lambda kv: -kv[1])[:12]}


# --------------------------------------------------------------------------- verdicts

def decide(store: Store, principal: Principal, item_id: int, verdict: str, value: float | None = None, *,
           blank: bool = False, note: str | None = None) -> dict[str, Any]:
    """Apply a reviewer's verdict to the item's field.

    ``blank=True`` is "blank as printed": the printed cell is empty, the value stays null and
    the field is no longer flagged (verdict ``confirmed``, note ``blank as printed``). The
    caller must hold the item (an admin may decide any open item). Returns the store's
    ``{"decision_id", "extraction_id", "status"}`` plus ``changed`` (cells the re-run relations
    pinned or flagged) and the document's ``remaining`` open items."""
    if blank:
        verdict, value = "confirmed", None
        note = BLANK_NOTE if not note else f"{BLANK_NOTE}: {note}"
    if verdict not in VERDICTS:
        raise ReviewError("bad_verdict", f"Unknown verdict {verdict!r}; use one of {', '.join(VERDICTS)}.", 422)
    if verdict == "corrected":
        if value is None or not math.isfinite(float(value)):
            raise ReviewError("value_required", "A correction needs a number.", 422)
    with store.session() as s:
        item = s.get(ReviewItem, item_id)
        if item is None or item.field_key is None:
            raise ReviewError("not_found", f"No review item {item_id}.", 404)
        if item.state not in ("open", "claimed"):
            raise ReviewError("already_done", "This field was already decided; reload to get the next one.")
        if item.state == "claimed" and item.claimed_by != principal.user_id and not principal.is_admin:
            raise ReviewError("not_yours", "Another reviewer holds this field; take the next one.")
        if item.state == "open" and not principal.is_admin:
            raise ReviewError("not_claimed", "Claim the field before deciding it (reload the page).")
        doc_id, key, kind = item.document_id, item.field_key, item.kind
        doc = s.get(Document, doc_id)
        ext = s.get(Extraction, doc.current_extraction_id) if doc and doc.current_extraction_id else None
        cur = ((ext.result or {}).get("fields") or {}).get(key) if ext else None
        if cur is None:
            raise ReviewError("not_found", f"Document {doc_id} has no field {key}.", 404)
        if verdict == "confirmed" and cur.get("value") is None and not blank and kind == "flagged":
            raise ReviewError("no_value", "There is no value to accept: type the number, or press b if the "
                                          "cell is blank as printed.", 422)
    out = store.record_decision(doc_id, key, verdict, value=value, reviewer_id=principal.user_id, note=note,
                                item_id=item_id)
    rerun = rerun_relations(store, doc_id, new_version=False, user_id=principal.user_id,
                            actor=principal.name)
    out["status"] = rerun["status"]
    out["changed"] = rerun["changed"]
    with store.session() as s:
        out["remaining"] = s.scalar(select(func.count()).select_from(ReviewItem).where(
            ReviewItem.document_id == doc_id, ReviewItem.state.in_(("open", "claimed")))) or 0
    out.update(document_id=doc_id, field_key=key, verdict=verdict)
    return out


# --------------------------------------------------------------------------- what the page shows

def item_context(store: Store, item_id: int) -> dict[str, Any]:
    """Everything the review page shows for one item: the field (value, text, reasons,
    confidence), its Chinese labels, the relations it takes part in with the other cells'
    values, the evidence (page crop for paged inputs, text lines for text/HTML), and label
    suggestions when the row was not found or matched fuzzily."""
    with store.session() as s:
        item = s.get(ReviewItem, item_id)
        if item is None:
            raise ReviewError("not_found", f"No review item {item_id}.", 404)
        doc = s.get(Document, item.document_id)
        ext = s.get(Extraction, doc.current_extraction_id) if doc.current_extraction_id else None
        data = (ext.result if ext else None) or {"fields": {}, "meta": {}, "checks": []}
        item_d = _item_dict(item, doc)
        fmt = (ext.format if ext else None) or doc.format
    fields = data.get("fields") or {}
    key = item_d["field_key"]
    f = fields.get(key) or {}
    form = form_for(data.get("meta") or {}, fields)
    checks = {(c.get("relation"), _scope(c)): c for c in data.get("checks") or []}
    rels = []
    for r in relations_of(form, key):
        if not all(k in fields for k in r.keys):
            continue
        c = checks.get((r.name, r.scope), {})
        rels.append({"name": r.name, "scope": r.scope, "label": r.label,
                     "lhs": [_cell(k, fields) for k in r.lhs], "rhs": [_cell(k, fields) for k in r.rhs],
                     "ok": c.get("ok"), "source_error": bool(c.get("source_error")), "detail": c.get("detail", "")})
    evidence: dict[str, Any]
    if f.get("page") and f.get("bbox") and fmt in ("pdf", "image", "scan"):
        b = f["bbox"]
        evidence = {"kind": "crop", "page": f["page"], "bbox": b,
                    "url": f"/review/api/documents/{doc.id}/pages/{f['page']}/crop.png"
                           f"?x0={b[0]}&y0={b[1]}&x1={b[2]}&y1={b[3]}"}
    else:
        evidence = {"kind": "text", **text_context(store, doc.id, key, f.get("text", ""))}
    learn = label_learning_hint(store, doc.id, key, f)
    return {"item": item_d, "key": key, "labels": key_labels(key, form), "field": f,
            "document": {"id": doc.id, "filename": doc.filename, "agency": doc.agency, "year": doc.year,
                         "status": doc.status, "format": fmt, "version": ext.version if ext else None},
            "relations": rels, "evidence": evidence, "learn": learn}


def _cell(key: str, fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    f = fields.get(key) or {}
    return {"key": key, "value": f.get("value"), "review": bool(f.get("review"))}


def _read_lines(store: Store, document_id: int) -> list[list[str]] | None:
    """The document's lines as cells, by its own reader (text / markdown / HTML only)."""
    from extractors.pipeline import READERS, sniff_format
    from models.options import ExtractOptions
    try:
        data, filename = store.load_original(document_id)
    except (KeyError, FileNotFoundError):
        return None
    fmt = sniff_format(data, filename)
    if fmt not in ("text", "markdown", "html"):
        return None
    try:
        doc = READERS[fmt](data, ExtractOptions())
    except Exception:       # an unreadable original: the page shows no context, the review goes on
        return None
    return [[c.text for c in line.cells] for line in doc.lines]


def _anchor_words(key: str) -> list[str]:
    from extractors.normalize import compact
    if key.startswith("appeal."):
        g = key.split(".")[1]
        return [compact("行政复议")] if g == "review" else [compact("行政诉讼")]
    spec = _ROWS.get(row_key(key))
    if spec is None:
        return []
    return [compact(w) for w in spec.keywords + spec.variants + (spec.label,) if compact(w)]


def text_context(store: Store, document_id: int, key: str, text: str = "", radius: int = 3) -> dict[str, Any]:
    """The lines around where the field is printed (text/HTML inputs have no page geometry):
    the first line holding the row's label words (for 行政复议/行政诉讼 the group header and the
    value rows under it), ``radius`` lines either side. ``hit`` is the index of that line."""
    from extractors.normalize import compact
    lines = _read_lines(store, document_id)
    if not lines:
        return {"lines": [], "hit": None}
    words = _anchor_words(key)
    hit = None
    for i, cells in enumerate(lines):
        if any(compact(x) in words for x in cells if x.strip()):     # the label as a cell of its own
            hit = i
            break
    for i, cells in enumerate(lines if hit is None else ()):
        c = compact("".join(cells))
        if any(w in c for w in words):
            if any(_is_number(x) or x == "" for x in cells[1:]):
                hit = i
                break
            hit = i if hit is None else hit
    if hit is None:
        return {"lines": [], "hit": None}
    before, after = (1, radius + 2) if key.startswith("appeal.") else (radius, radius)
    lo, hi = max(0, hit - before), min(len(lines), hit + after + 1)
    return {"lines": [{"no": i + 1, "cells": lines[i], "hit": i == hit} for i in range(lo, hi)], "hit": hit - lo}


_NUM = re.compile(r"^[+-]?\d[\d,，]*(?:\.\d+)?(?:万元|元)?$")


def _is_number(x: str) -> bool:
    return bool(_NUM.match(x.strip()))


# --------------------------------------------------------------------------- the document view

def document_table(store: Store, document_id: int) -> dict[str, Any]:
    """The document's three tables rebuilt from its current values, for the document view:
    per table the column labels and rows of cells (value, flagged, reviewer), plus checks."""
    data = export_document(store, document_id)
    if data is None:
        raise ReviewError("not_found", f"No document {document_id}.", 404)
    fields = data.get("fields") or {}
    form = form_for(data.get("meta") or {}, fields)

    def cell(k: str) -> dict[str, Any]:
        f = fields.get(k)
        if f is None:
            return {"key": k, "absent": True}
        return {"key": k, "value": f.get("value"), "review": bool(f.get("review")), "text": f.get("text", ""),
                "reviewed_by": f.get("reviewed_by"), "verdict": f.get("verdict"),
                "reasons": f.get("reasons") or []}

    active_cols: list[tuple[str, str]] = []
    for r in form.active_rows:
        for c in r.columns:
            if (c.key, c.label) not in active_cols:
                active_cols.append((c.key, c.label))
    tables = [
        {"title": "主动公开政府信息情况", "columns": [lab for _, lab in active_cols],
         "rows": [{"label": r.label, "cells": [cell(f"active.{r.key}.{ck}") if any(c.key == ck for c in r.columns)
                                               else None for ck, _ in active_cols]} for r in form.active_rows]},
        {"title": "收到和处理政府信息公开申请情况", "columns": [c.label for c in form.apply_columns],
         "rows": [{"label": r.label, "cells": [cell(f"apply.{r.key}.{c.key}") for c in form.apply_columns]}
                  for r in form.apply_rows]},
        {"title": "政府信息公开行政复议、行政诉讼情况", "columns": [c.label for c in form.appeal_results],
         "rows": [{"label": g.label, "cells": [cell(f"appeal.{g.key}.{c.key}") for c in form.appeal_results]}
                  for g in form.appeal_groups]},
    ]
    return {"document": {k: data.get(k) for k in ("id", "source", "status", "version", "meta", "sha256")},
            "tables": tables, "checks": [c for c in data.get("checks") or [] if c.get("ok") is not True],
            "flagged": sum(1 for f in fields.values() if f.get("review"))}


# --------------------------------------------------------------------------- exports

def reviewed_by(store: Store, document_id: int) -> dict[str, dict[str, Any]]:
    """Who confirmed or supplied each reviewed value of the current version:
    ``{key: {"reviewed_by", "verdict", "reviewed_at", "note", "decision_id"}}``."""
    with store.session() as s:
        doc = s.get(Document, document_id)
        if doc is None or not doc.current_extraction_id:
            return {}
        rows = s.execute(
            select(Field.key, Decision, User.name)
            .join(Decision, Decision.id == Field.decision_id)
            .outerjoin(User, User.id == Decision.reviewer_id)
            .where(Field.extraction_id == doc.current_extraction_id))
        return {k: {"reviewed_by": name or "admin", "verdict": d.verdict, "note": d.note, "decision_id": d.id,
                    "reviewed_at": d.created_at.isoformat() if d.created_at else None} for k, d, name in rows}


def export_document(store: Store, document_id: int) -> dict[str, Any] | None:
    """The output-contract object of the document's current version, each reviewed field
    carrying ``reviewed_by`` (name), ``verdict``, ``reviewed_at`` and ``review_note``."""
    data = store.document_json(document_id)
    if data is None:
        return None
    who = reviewed_by(store, document_id)
    fields = data.get("fields") or {}
    data["fields"] = {k: ({**f, "reviewed_by": who[k]["reviewed_by"], "verdict": who[k]["verdict"],
                           "reviewed_at": who[k]["reviewed_at"], "review_note": who[k]["note"]}
                          if k in who else f) for k, f in fields.items()}
    return data


# --------------------------------------------------------------------------- spot checks

def queue_spot_checks(store: Store, document_ids: Sequence[int], percent: float | None = None, *,
                      batch_id: int | None = None, seed: int | None = None) -> int:
    """Queue ``percent`` % (at least one when there are any) of the unflagged fields of these
    documents' current versions as ``spot_check`` items, chosen at random, lowest priority.
    A field that already has a spot check is not sampled twice. Returns how many were queued."""
    percent = review_settings().spot_check_percent if percent is None else float(percent)
    if percent <= 0 or not document_ids:
        return 0
    rng = random.Random(seed)
    with store.session() as s:
        done = set(s.execute(select(ReviewItem.document_id, ReviewItem.field_key).where(
            ReviewItem.document_id.in_(list(document_ids)), ReviewItem.kind == "spot_check")).all())
        pool = [(d, f) for d, f in s.execute(
            select(Document.id, Field).join(Field, Field.extraction_id == Document.current_extraction_id)
            .where(Document.id.in_(list(document_ids)), Document.status != "failed", Field.review == False,  # noqa: E712
                   Field.decision_id == None))  # noqa: E711
            if (d, f.key) not in done]
        if not pool:
            return 0
        n = min(len(pool), max(1, round(len(pool) * percent / 100.0)))
        for d, f in rng.sample(pool, n):
            s.add(ReviewItem(document_id=d, extraction_id=f.extraction_id, field_id=f.id, field_key=f.key,
                             kind="spot_check", reason=SPOT_REASON, priority=-10, state="open",
                             details={"sampled_value": f.value, "batch_id": batch_id, "percent": percent}))
        audit(s, "spot_checks_queued", "batch" if batch_id else "document", batch_id,
              new={"count": n, "of": len(pool), "percent": percent, "documents": len(set(document_ids))})
        return n


def queue_spot_checks_for_batch(store: Store, batch_id: int, percent: float | None = None,
                                seed: int | None = None) -> int:
    """Spot checks over every document of an archive batch (call when the batch ends)."""
    with store.session() as s:
        ids = [i for i in s.scalars(select(BatchItem.document_id).where(
            BatchItem.batch_id == batch_id, BatchItem.document_id != None).distinct())]  # noqa: E711
    return queue_spot_checks(store, ids, percent, batch_id=batch_id, seed=seed)


def quality_report(store: Store) -> dict[str, Any]:
    """The measured silent-error rate: of the decided spot checks, how many found the unflagged
    value wrong (verdict ``corrected`` to a different value), with a 95 % Wilson interval; per
    batch too. Also the review rate of the current versions (flagged / all fields)."""
    with store.session() as s:
        rows = s.execute(select(ReviewItem, Decision).join(Decision, Decision.id == ReviewItem.decision_id)
                         .where(ReviewItem.kind == "spot_check", ReviewItem.state == "done")).all()
        pending = s.scalar(select(func.count()).select_from(ReviewItem).where(
            ReviewItem.kind == "spot_check", ReviewItem.state.in_(("open", "claimed")))) or 0
        total_fields, flagged = s.execute(
            select(func.count(), func.sum(func.cast(Field.review, type_=_int_type())))
            .join(Document, Document.current_extraction_id == Field.extraction_id)).one()
        originally = s.scalar(select(func.count()).select_from(ReviewItem).where(ReviewItem.kind == "flagged")) or 0
    by_batch: dict[Any, list[int]] = {}
    errors, examples = 0, []
    for item, dec in rows:
        sampled = (item.details or {}).get("sampled_value")
        wrong = dec.verdict == "corrected" and (sampled is None or dec.value is None or abs(dec.value - sampled) > 1e-9)
        errors += wrong
        b = by_batch.setdefault((item.details or {}).get("batch_id"), [0, 0])
        b[0] += 1
        b[1] += wrong
        if wrong and len(examples) < 20:
            examples.append({"document_id": item.document_id, "key": item.field_key, "extracted": sampled,
                             "correct": dec.value})
    n = len(rows)
    return {"spot_checks_done": n, "spot_checks_pending": pending, "silent_errors": errors,
            "silent_error_rate": (errors / n) if n else None, "interval95": _wilson(errors, n),
            "by_batch": [{"batch_id": k, "checked": v[0], "errors": v[1]} for k, v in by_batch.items()],
            "examples": examples, "fields": int(total_fields or 0), "flagged_now": int(flagged or 0),
            "flagged_items_total": originally}


def _int_type():
    from sqlalchemy import Integer
    return Integer()


def _wilson(k: int, n: int, z: float = 1.96) -> list[float] | None:
    if n == 0:
        return None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [max(0.0, c - h), min(1.0, c + h)]


# --------------------------------------------------------------------------- learning

_FUZZY = re.compile(r"label matched fuzzily \(\d+%\): (.+)$")


def _fuzzy_label(reasons: Sequence[str]) -> str | None:
    for r in reasons or ():
        m = _FUZZY.search(r)
        if m:
            try:
                return str(ast.literal_eval(m.group(1)))
            except (ValueError, SyntaxError):
                return m.group(1).strip("'\"")
    return None


def label_learning_hint(store: Store, document_id: int, key: str, field: dict[str, Any]) -> dict[str, Any] | None:
    """For a field whose row label was matched fuzzily or not found, what the reviewer could
    teach: ``{"row", "label", "suggestions"}``; None for appeal cells (fixed header wording)."""
    if key.startswith("appeal.") or not field:
        return None
    reasons = field.get("reasons") or []
    fuzzy = _fuzzy_label(reasons)
    missing = any("row not found" in r for r in reasons)
    if not fuzzy and not missing:
        return None
    spec = _ROWS.get(row_key(key))
    return {"row": row_key(key), "label": spec.label if spec else row_key(key),
            "suggestions": [fuzzy] if fuzzy else unmatched_labels(store, document_id)}


def unmatched_labels(store: Store, document_id: int, limit: int = 8) -> list[str]:
    """Printed row labels of the document that no form row matched: a first cell of text
    followed by number cells (the likely spellings to teach)."""
    from extractors.mapping import matcher_for
    lines = _read_lines(store, document_id) or []
    matcher = matcher_for(str(review_settings().rules_file))
    out: list[str] = []
    for cells in lines:
        if len(cells) < 2 or not cells[0].strip() or _is_number(cells[0]):
            continue
        if not any(_is_number(c) for c in cells[1:]):
            continue
        if not matcher.match(cells[0]) and cells[0] not in out:
            out.append(cells[0].strip())
        if len(out) >= limit:
            break
    return out


def load_rules(path: Path | str) -> dict[str, Any]:
    """The rule file (``{"version", "variants": {row key: [text]}, "history": [...]}``)."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError):
        data = {}
    data.setdefault("version", 0)
    data.setdefault("variants", {})
    data.setdefault("history", [])
    return data


@contextmanager
def _locked(path: Path):
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_rules(path: Path, data: dict[str, Any]) -> None:
    import tempfile
    old = path.stat().st_mtime_ns if path.exists() else 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rules-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    new = path.stat().st_mtime_ns
    if new <= old:      # the matcher cache is keyed by mtime: a new version must have a new one
        os.utime(path, ns=(old + 1_000_000, old + 1_000_000))


def learn_label(store: Store, principal: Principal, key: str, text: str, *, rules_file: Path | str | None = None,
                min_votes: int | None = None, document_id: int | None = None) -> dict[str, Any]:
    """A reviewer confirms that the printed label ``text`` means the row of ``key`` (a field key
    or a row key like ``apply.denied.state_secret``). Each confirmation is an audit record
    (``label_vote``); once ``min_votes`` distinct reviewers agree, the variant is written to the
    rule file (version + 1, history entry) and the matchers use it from their next extraction.
    Returns ``{"state": "learned" | "voted" | "known", "version", "votes", "row"}``."""
    from extractors.mapping import matcher_for
    from extractors.normalize import compact

    st = review_settings()
    path = Path(rules_file or st.rules_file)
    min_votes = st.learn_min_votes if min_votes is None else max(1, min_votes)
    row = key if key in _ROWS else row_key(key)
    text = (text or "").strip()
    if row not in _ROWS:
        raise ReviewError("bad_row", f"{key} is not a row of the forms; labels can be taught for "
                                     "主动公开 and 申请 rows only.", 422)
    if not compact(text) or len(compact(text)) < 2:
        raise ReviewError("bad_label", "Give the label as printed (at least two characters).", 422)
    hits = matcher_for(str(path)).match(text)
    if hits and hits[0].method in ("keyword", "learned") and hits[0].key == row and len(hits) == 1:
        return {"state": "known", "row": row, "version": load_rules(path)["version"], "votes": 0}
    voter = principal.user_id if principal.user_id is not None else principal.name
    with store.session() as s:
        audit(s, "label_vote", "rule", None, document_id=document_id, field_key=row, user_id=principal.user_id,
              actor=principal.name, new={"row": row, "text": text})
        votes = {(a.user_id if a.user_id is not None else a.actor) for a in s.scalars(
            select(AuditLog).where(AuditLog.action == "label_vote", AuditLog.field_key == row))
            if isinstance(a.new, dict) and compact(a.new.get("text", "")) == compact(text)}
        votes.add(voter)
    if len(votes) < min_votes:
        return {"state": "voted", "row": row, "version": load_rules(path)["version"], "votes": len(votes)}
    with _locked(path):
        data = load_rules(path)
        known = [compact(v) for v in data["variants"].get(row, [])]
        if compact(text) in known:
            return {"state": "known", "row": row, "version": data["version"], "votes": len(votes)}
        data["version"] += 1
        data["variants"].setdefault(row, []).append(text)
        data["history"].append({"version": data["version"], "action": "add", "row": row, "text": text,
                                "by": principal.name, "votes": len(votes), "at": utcnow().isoformat(),
                                "document_id": document_id})
        _write_rules(path, data)
    with store.session() as s:
        audit(s, "rule_learned", "rule", data["version"], document_id=document_id, field_key=row,
              user_id=principal.user_id, actor=principal.name, new={"row": row, "text": text,
                                                                    "version": data["version"]},
              reason=f"{len(votes)} reviewer(s) confirmed the label")
    return {"state": "learned", "row": row, "version": data["version"], "votes": len(votes)}


def remove_label(principal: Principal, row: str, text: str, rules_file: Path | str | None = None) -> dict[str, Any]:
    """Drop a learned variant (admin); a new version with a ``remove`` history entry."""
    path = Path(rules_file or review_settings().rules_file)
    with _locked(path):
        data = load_rules(path)
        vs = data["variants"].get(row, [])
        if text not in vs:
            raise ReviewError("not_found", f"{text!r} is not a learned label of {row}.", 404)
        vs.remove(text)
        if not vs:
            data["variants"].pop(row, None)
        data["version"] += 1
        data["history"].append({"version": data["version"], "action": "remove", "row": row, "text": text,
                                "by": principal.name, "at": utcnow().isoformat()})
        _write_rules(path, data)
    return {"state": "removed", "version": data["version"]}


def reextract_now(store: Store, document_id: int, *, rules_file: Path | str | None = None,
                  user_id: int | None = None) -> dict[str, Any]:
    """Extract a finished document again in this process with the current rule file (after a
    label was learned), save it as a new version (reviewers' decisions are re-applied by the
    store) and re-run the relations. Only for text-like inputs or small files: paged scans go
    through the workers (``Store.request_reextraction``)."""
    from extractors.pipeline import extract_bytes
    from models.options import ExtractOptions

    path = str(rules_file or review_settings().rules_file)
    if not store.request_reextraction(document_id, user_id=user_id):
        raise ReviewError("busy", "The document is still being processed; try again when it is finished.")
    owner = f"review-reextract-{document_id}"
    claim = store.claim_document(document_id, owner)
    if claim.outcome != "claimed":
        raise ReviewError("busy", f"The document could not be taken for re-extraction ({claim.outcome}).")
    data, filename = store.load_original(document_id)
    result = extract_bytes(data, filename, ExtractOptions(rules_file=path))
    store.save_result(document_id, result, owner=owner)
    return after_extraction(store, document_id, spot_check_percent=0)
