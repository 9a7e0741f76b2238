"""Runs the shared stages on a reader's output and builds the ``ExtractionResult``."""
from __future__ import annotations

import os

from models.cells import ReadDocument
from models.errors import InputError, NOT_A_REPORT
from models.forms import build_form
from models.options import ExtractOptions
from models.result import ExtractionResult, Meta

from . import confidence
from .grid import CellValue, build_stream, choose, reconstruct, relations_within
from .mapping import matcher_for
from .meta import detect_agency, detect_template, detect_year
from .segment import tokenize
from .validation import evaluate, pin


def extract_fields(doc: ReadDocument, source: str, digest: str, options: ExtractOptions) -> ExtractionResult:
    matcher = matcher_for(options.rules_file or os.environ.get("NIANBAO_RULES"))
    tokens = tokenize(doc)
    stream = build_stream(tokens, matcher)
    year = detect_year(doc.text)
    template = detect_template(doc.text, year)
    hit_keys = {it.hit.key for it in stream if it.hit is not None}
    single_other = template == "2021" and not (hit_keys & {"apply.other.no_correction", "apply.other.unpaid_fee",
                                                          "apply.other.misc"})
    org_subtotal = "小计" in doc.text and "法人或其他组织" in doc.text
    form = build_form(template, single_other_row=single_other, org_subtotal=org_subtotal)
    tables = reconstruct(stream, form, options.max_split_candidates)
    if not any(k.startswith("apply.") for k in tables.rows) and \
            sum(1 for k in tables.rows if k.startswith("active.")) < 2:
        raise InputError(NOT_A_REPORT, "No 政府信息公开工作年度报告 statistics tables were found in this file; "
                                       "check that it is an annual report with its tables.")
    choose(tables.rows, form)

    # one cell per key: decided where every surviving candidate agrees
    cells: dict[str, CellValue | None] = {k: None for k in form.keys()}
    row_of: dict[str, set[str]] = {}
    ambiguous: set[str] = set()
    unplaced: set[str] = set()
    # Doubts about a whole row (where it sits, which label it had, how its digits were cut): only
    # a relation reaching outside that row can lift them; its own row total says nothing about them.
    row_doubts: dict[str, list[str]] = {}
    for row in tables.rows.values():
        first = row.candidates[0] if row.candidates else None
        for i, key in enumerate(row.keys):
            if first is None:
                continue
            row_of[key] = set(row.keys)
            cells[key] = first[i]
            if len({c[i].value for c in row.candidates}) > 1:
                ambiguous.add(key)
            d: list[str] = []
            if row.placed_by_order:
                d.append("row label not printed beside the values: placed by the form's row order")
            if row.uncertain_positions:
                unplaced.add(key)       # no relation may vouch for a cell whose position is a guess
            if row.label_hit is not None and row.label_hit.method == "fuzzy":
                d.append(f"label matched fuzzily ({row.label_hit.score:.0%}): {row.label!r}")
            if key.endswith(".amount") and any("unit converted" in r for r in first[i].reasons):
                d.append("unit converted")
            if d:
                row_doubts[key] = d

    # Cells a relation had to choose among several readings (a split of run-together digits) are
    # only as good as that relation: they may not pin blanks, and another relation must confirm
    # them (property test: a blank lost inside a run-together row forces a wrong split that its
    # row total accepts; pinning from it would hide the error in a blank cell).
    chosen_by_relation: set[str] = set()
    for row in tables.rows.values():
        if not row.glued or row.readings <= 1:
            continue        # a tie between positions of printed values invents no number
        if len(relations_within(form, row.keys)) >= 2:
            continue        # cut under several independent relations at once (the 15 appeal cells
                            # under three group totals): the cut is as firm as the relations
        # every cell of the row, not only those that varied: a blank lost inside the run shifts
        # the cut of cells that look fixed (property test, seed 495)
        for k in row.keys:
            if k not in ambiguous:
                chosen_by_relation.add(k)
                row_doubts.setdefault(k, []).append("split chosen by its row's own relation")

    # relations: pin blanks, then evaluate with what is known
    values = {k: (None if (k in ambiguous or k in unplaced or c is None) else c.value) for k, c in cells.items()}
    for k, c in cells.items():
        if c is not None and c.unclean:
            values[k] = None
    trusted_relations = [r for r in form.relations if not (set(r.keys) & chosen_by_relation)]
    pinned = pin(trusted_relations, values)
    checks = [evaluate(r, values) for r in form.relations]
    by_key: dict[str, list] = {}
    for c in checks:
        for k in c.keys:
            by_key.setdefault(k, []).append(c)

    excused, culprits = localize_errors(checks, by_key)

    fields = {}
    for key in form.keys():
        forced = ["fewer cells printed than the row has: position uncertain"] if key in unplaced else []
        doubts = row_doubts.get(key, [])
        if doubts:
            outside = [c for c in by_key.get(key, []) if not set(c.keys) <= row_of.get(key, set())]
            if not (any(c.ok is True for c in outside) and not any(c.ok is False for c in outside)):
                forced += [d + "; no relation outside the row confirms it" for d in doubts]
                doubts = []
        if key in culprits:
            forced.append(culprits[key])
        key_checks = [c for c in by_key.get(key, []) if id(c) not in excused.get(key, ())]
        fields[key] = confidence.route(key, cells[key], ambiguous=key in ambiguous, doubts=doubts,
                                       checks=key_checks, pinned=pinned.get(key),
                                       threshold=options.review_threshold, forced=forced)
    meta = Meta(agency=detect_agency(doc.text), year=year, template=template)
    status = "needs_review" if any(f.review for f in fields.values()) else "extracted"
    return ExtractionResult(source=source, sha256=digest, status=status, meta=meta, fields=fields,
                            checks=checks, format=doc.format, pages=doc.pages)


def localize_errors(checks, by_key) -> tuple[dict[str, set[int]], dict[str, str]]:
    """Point a broken relation at its one misread cell when the other relations can tell.

    A broken relation puts all its cells in doubt "unless the extractor can show which one is
    wrong" (canonical-fields.md). It can when exactly one of its cells has every relation it is in
    broken (e.g. row total and column total both fail through it) while each other cell is vouched
    for by a relation that holds. Then the others are excused from that relation and the one cell
    stays flagged, with the value both relations imply when they agree. Nothing is repaired.
    """
    excused: dict[str, set[int]] = {}
    culprits: dict[str, str] = {}
    for rel in (c for c in checks if c.ok is False):
        suspects = []
        for k in rel.keys:
            mine = by_key.get(k, [])
            if len(mine) >= 2 and all(c.ok is False for c in mine):
                suspects.append(k)
        if len(suspects) != 1:
            continue
        others = [k for k in rel.keys if k != suspects[0]]
        if not all(any(c.ok is True for c in by_key.get(k, [])) for k in others):
            continue
        for k in others:
            excused.setdefault(k, set()).add(id(rel))
        culprits[suspects[0]] = (f"likely the misread cell: {len(by_key[suspects[0]])} relations "
                                 "fail through it while the other cells check out")
    return excused, culprits

