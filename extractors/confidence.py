"""Stage 6: confidence per field and review routing, with reasons a person can read.

Route on the weakest evidence, not the mean. A field is flagged when it is unknown, ambiguous,
takes part in a broken relation, or carries a doubt (fuzzy label, placement by row order, unit
conversion, low OCR score, unclean text) that no relation confirms. A relation confirms a cell
when it evaluates ``ok`` with the cell in it.
"""
from __future__ import annotations

import math

from models.result import Check, FieldResult

from .grid import CellValue

DECIDED = 0.99          # printed in a delimited cell under an exactly matched label
SPLIT_UNIQUE = 0.96     # cut from run-together digits, the only split the relations allow
PINNED = 0.93           # printed blank, value fixed by the relations
DOUBT = 0.7             # a doubt no relation confirms
AMBIGUOUS = 0.3
UNKNOWN = 0.1


def route(key: str, cell: CellValue | None, *, ambiguous: bool, doubts: list[str], checks: list[Check],
          pinned: tuple[int, str] | None, threshold: float, forced: list[str] = ()) -> FieldResult:
    """``forced``: reasons that send the field to review whatever the relations say."""
    result = _route(key, cell, ambiguous=ambiguous, doubts=doubts, checks=checks, pinned=pinned,
                    threshold=threshold)
    if forced:
        result.reasons = _dedupe(result.reasons + list(forced))
        result.confidence = min(result.confidence, AMBIGUOUS)
        result.review = True
    return result


def _route(key: str, cell: CellValue | None, *, ambiguous: bool, doubts: list[str], checks: list[Check],
           pinned: tuple[int, str] | None, threshold: float) -> FieldResult:
    token = cell.token if cell else None
    src = token.cell if token else None
    base = dict(page=src.page if src else None, bbox=src.bbox if src else None,
                text=cell.text if cell else "")
    reasons = list(cell.reasons) if cell else ["row not found in the document"]
    broken = [c for c in checks if c.ok is False]
    # a relation that holds with this cell in it vouches for the printed value (an OCR misread
    # would have to be cancelled exactly by another one); a relation it cannot evaluate neither
    # vouches nor accuses
    confirmed = any(c.ok is True for c in checks) and not broken
    for c in broken:
        reasons.append(f"relation {c.relation}[{c.scope}] violated: {c.detail}")

    if cell is None or (cell.value is None and pinned is None):
        if cell is not None and ambiguous:
            reasons.append("split ambiguous")
        if checks and not pinned:
            reasons.append("relations cannot pin it")
        return FieldResult(None, UNKNOWN, True, _dedupe(reasons), **base)

    if pinned is not None and cell.value is None:
        value, rel = pinned
        reasons.append(f"pinned to {value} by relation {rel}")
        conf = PINNED if not broken else AMBIGUOUS
        return FieldResult(value, conf, conf < threshold, _dedupe(reasons), **base)

    conf = SPLIT_UNIQUE if cell.split else DECIDED
    if ambiguous:
        reasons.append("split ambiguous: several readings fit the relations")
        conf = AMBIGUOUS
    if cell.unclean:
        conf = min(conf, DOUBT)
    score = src.score if src is not None else math.nan
    if not math.isnan(score):
        conf = min(conf, max(0.05, float(score)))
        if score < threshold:
            reasons.append(f"OCR confidence {score:.2f}")
    if doubts:
        reasons.extend(doubts)
        conf = min(conf, DOUBT)
    if broken:
        conf = min(conf, 0.4)
    elif confirmed and not ambiguous and not cell.unclean:
        # the form's arithmetic vouches for the printed value despite a doubt about its label
        conf = max(conf, 0.9) if (doubts or not math.isnan(score)) else conf
    return FieldResult(cell.value, conf, conf < threshold, _dedupe(reasons), **base)


def _dedupe(xs: list[str]) -> list[str]:
    seen: list[str] = []
    for x in xs:
        if x not in seen:
            seen.append(x)
    return seen
