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

    excused, culprits = localize_errors(checks, by_key, values)

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


def localize_errors(checks, by_key, values) -> tuple[dict[str, set[int]], dict[str, str]]:
    """Point broken relations at one misread cell when a single error explains them all.

    A broken relation puts all its cells in doubt "unless the extractor can show which one is
    wrong" (canonical-fields.md). It can when one cell lies in every broken relation, every
    relation it is in is broken (its row total and its column total both fail through it), and
    each broken relation is mended by the same value of that cell. Then the other cells are
    excused from those relations and the one cell stays flagged, with the value the relations
    imply as a hint. Several errors (which can make a wrong cell's other relation hold by
    compensation) never match this pattern, so nothing is excused then. Nothing is repaired.
    """
    broken = [c for c in checks if c.ok is False]
    if not broken or any(values.get(x) is None for c in broken for x in c.keys):
        return {}, {}
    common = set(broken[0].keys).intersection(*(set(c.keys) for c in broken[1:]))
    suspects = [k for k in common if len(by_key.get(k, [])) >= 2
                and all(c.ok is False for c in by_key[k]) and values.get(k) is not None]
    if len(suspects) != 1:
        return {}, {}
    k = suspects[0]
    implied = set()
    for c in broken:
        left = c.keys[:c.lhs_count]
        lhs = sum(values[x] for x in left)
        rhs = sum(values[x] for x in c.keys[c.lhs_count:])
        implied.add(values[k] + (rhs - lhs) if k in left else values[k] + (lhs - rhs))
    if len(implied) != 1 or min(implied) < 0:
        return {}, {}
    excused = {x: {id(c) for c in broken} for c in broken for x in c.keys if x != k}
    return excused, {k: f"likely the misread cell: {len(broken)} relations fail through it and "
                        f"all would hold with {next(iter(implied)):g}"}

