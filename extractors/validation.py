"""Stage 5: the form's own arithmetic (勾稽关系) on extracted values.

Unknown cells (blank, lost, ambiguous) are non-negative integers we do not know. A relation is
*possible* when some non-negative values of its unknowns satisfy it, *ok* when all its cells are
known and it holds. ``pin`` fills unknowns only where the relations fix them exactly: known
parts already summing to the whole pin every unknown part to 0; a single unknown is the
difference. A relation the printed numbers break is reported, never repaired.
"""
from __future__ import annotations

from models.forms import Relation
from models.result import Check

Values = dict[str, "int | float | None"]


def _sides(rel: Relation, values: Values):
    kl = sum(values[k] for k in rel.lhs if values.get(k) is not None)
    kr = sum(values[k] for k in rel.rhs if values.get(k) is not None)
    ul = [k for k in rel.lhs if values.get(k) is None]
    ur = [k for k in rel.rhs if values.get(k) is None]
    return kl, kr, ul, ur


def possible(rel: Relation, values: Values) -> bool:
    kl, kr, ul, ur = _sides(rel, values)
    if not ul and not ur:
        return abs(kl - kr) < 1e-9
    if ul and ur:
        return True
    if ul:
        return kr - kl >= 0
    return kl - kr >= 0


def evaluate(rel: Relation, values: Values) -> Check:
    kl, kr, ul, ur = _sides(rel, values)
    if ul or ur:
        ok = None if possible(rel, values) else False
        detail = f"unknown: {', '.join(ul + ur)}" if ok is None else \
            f"{' + '.join(rel.lhs)} = {kl:g}+? cannot equal {kr:g}+?"
    else:
        ok = abs(kl - kr) < 1e-9
        detail = "" if ok else f"{_fmt(rel.lhs, values)} = {kl:g} but {_fmt(rel.rhs, values)} = {kr:g}"
    return Check(rel.name, rel.scope, ok, list(rel.keys), detail, len(rel.lhs))


def _fmt(keys, values: Values) -> str:
    if len(keys) == 1:
        return keys[0].split(".", 1)[1]
    return "+".join(str(values.get(k)) for k in keys)


def pin(relations: tuple[Relation, ...] | list[Relation], values: Values) -> dict[str, tuple[int, str]]:
    """Unknowns fixed by the relations: key -> (value, relation label). ``values`` is updated."""
    pinned: dict[str, tuple[int, str]] = {}
    changed = True
    while changed:
        changed = False
        for rel in relations:
            kl, kr, ul, ur = _sides(rel, values)
            if (ul and ur) or not (ul or ur):
                continue
            unknown = ul or ur
            diff = (kr - kl) if ul else (kl - kr)
            if diff < 0 or diff != int(diff):
                continue
            if len(unknown) == 1:
                values[unknown[0]] = int(diff)
                pinned[unknown[0]] = (int(diff), rel.label)
                changed = True
            elif diff == 0:
                for k in unknown:
                    values[k] = 0
                    pinned[k] = (0, rel.label)
                changed = True
    return pinned
