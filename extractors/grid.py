"""Stage 4: token stream -> form rows with candidate values.

Strategy (one for every text-like layout, the same after any reader):

1. ``build_stream``: label tokens become label items carrying their matched row (or none);
   value/blank tokens stay as they are.
2. ``value_groups``: maximal runs of values on one line. A run right after a row label belongs
   to that row (an *anchor*); any other run with numbers is *floating* (a row whose label was
   lost or spilled elsewhere: shared/devset/shanghai-kjw-2024.md, or a wrapped label printed
   above its values: hongze-2023.pdf).
3. ``align``: per table, a weighted LCS picks anchors in the form's row order, so narrative
   mentions (``部分公开答复0件``) and repeated words never take a row out of order.
4. Floating runs fill the rows between two anchors *by the form's row order*, only when their
   count equals the number of rows missing there (otherwise those rows stay empty and flagged).
5. ``decode``: a run becomes candidate vectors of the row's N cells: delimited cells map one to
   one (surplus blank cells at the edges are layout padding, e.g. the seed's trailing tab);
   glued digit runs are split every possible way (no leading zeros) and the row's own
   relation (row total / appeal totals) filters the splits. ``choose`` then uses the column
   relations across rows. A cell equal in every surviving candidate is decided; otherwise it
   is ambiguous and goes to review.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from models.forms import Form, RowSpec
from models.result import clean_number

from .mapping import LabelHit, LabelMatcher
from .segment import Token
from .validation import possible

MAX_DIGITS_PER_VALUE = 9      # active-table counts (行政处罚 decisions) can run into millions
MAX_DIGITS_COUNT_ROW = 6      # an application/appeal cell above 999,999 is not a plausible split


@dataclass(slots=True)
class Item:
    kind: str                  # "label" | "value" | "blank"
    token: Token
    pos: int
    hit: LabelHit | None = None


@dataclass(slots=True)
class Group:
    items: list[Item]
    pos: int
    line: int
    after: Item | None         # the label item right before it on the same line, if any

    @property
    def nonblank(self) -> int:
        return sum(1 for it in self.items if it.kind == "value")

    @property
    def text(self) -> str:
        return " ".join(it.token.text or "∅" for it in self.items)


@dataclass(slots=True)
class CellValue:
    value: int | float | None
    text: str
    token: Token | None
    reasons: list[str] = field(default_factory=list)
    split: bool = False        # one of several values cut out of a run-together digit string
    unclean: bool = False      # the printed text was not a clean number for its column


Candidate = tuple[CellValue, ...]


@dataclass(slots=True)
class RowResult:
    key: str                   # "apply.granted", "appeal" ...
    keys: list[str]            # canonical keys of its cells, in order
    candidates: list[Candidate]
    label: str = ""
    label_hit: LabelHit | None = None
    placed_by_order: bool = False
    uncertain_positions: bool = False   # fewer cells printed than the row has, positions unknown
    glued: bool = False
    notes: list[str] = field(default_factory=list)
    readings: int = 1          # candidates before any relation was used
    varied: frozenset[int] = frozenset()   # cells whose value differed among those readings


# --- stream -----------------------------------------------------------------------------------

def build_stream(tokens: list[Token], matcher: LabelMatcher) -> list[Item]:
    items: list[Item] = []
    for tok in tokens:
        if tok.kind != "label":
            items.append(Item(tok.kind, tok, len(items)))
            continue
        hits = matcher.match(tok.text)
        if not hits:
            items.append(Item("label", tok, len(items), None))
        for h in hits:
            items.append(Item("label", tok, len(items), h))
    return items


def value_groups(stream: list[Item]) -> list[Group]:
    groups: list[Group] = []
    cur: list[Item] = []
    for i, it in enumerate(stream):
        if it.kind in ("value", "blank") and cur and cur[-1].pos == it.pos - 1 and (
                cur[-1].token.line == it.token.line or _one_per_line(cur[-1], it)):
            cur.append(it)
            continue
        if cur:
            groups.append(_group(stream, cur))
            cur = []
        if it.kind in ("value", "blank"):
            cur = [it]
    if cur:
        groups.append(_group(stream, cur))
    return groups


def _one_per_line(a: Item, b: Item) -> bool:
    """Cells printed one per line (pdftotext-style dumps): consecutive lines that hold nothing
    but one number each continue the same row."""
    return (a.kind == "value" and b.kind == "value" and not a.token.delimited and not b.token.delimited
            and b.token.line == a.token.line + 1)


def _ends_line(stream: list[Item], it: Item) -> bool:
    return it.pos + 1 >= len(stream) or stream[it.pos + 1].token.line != it.token.line


def _group(stream: list[Item], items: list[Item]) -> Group:
    first = items[0]
    prev = stream[first.pos - 1] if first.pos > 0 else None
    after = None
    if prev is not None and prev.kind == "label":
        if prev.token.line == first.token.line:
            after = prev
        elif (not first.token.delimited and not prev.token.delimited
              and first.token.line == prev.token.line + 1 and all(not it.token.delimited for it in items)
              and _ends_line(stream, items[-1])):
            after = prev        # a label line followed by its numbers one per line
    return Group(items, first.pos, first.token.line, after)


# --- values -----------------------------------------------------------------------------------

_UNIT_YUAN = re.compile(r"(万元|元|万)$")


def parse_value(text: str, kind: str) -> CellValue:
    """One printed cell -> value for a column of ``kind`` ("count", "signed", "amount")."""
    t = text.strip()
    if t.isdigit() and t.isascii():                       # the common case, fast
        return CellValue(int(t), text, None, [])
    unit = None
    m = _UNIT_YUAN.search(t)
    if m:
        unit = m.group(1)
        t = t[: m.start()].strip()
    reasons: list[str] = []
    unclean = False
    try:
        v = float(t)
    except ValueError:
        return CellValue(None, text, None, ["value not a number"], unclean=True)
    if kind == "amount":
        if unit == "元":
            v = round(v / 10000.0, 6)
            reasons.append(f"unit converted: printed {text} (元) -> {clean_number(v)} 万元")
        return CellValue(clean_number(v), text, None, reasons)
    if unit is not None:
        reasons.append(f"unexpected unit in a count cell: {text}")
        unclean = True
    if v != int(v):
        return CellValue(v, text, None, reasons + ["value not a clean integer"], unclean=True)
    if v < 0 and kind != "signed":
        return CellValue(int(v), text, None, reasons + ["negative count"], unclean=True)
    return CellValue(int(v), text, None, reasons, unclean=unclean)


def _splits(digits: str, k: int, budget: list[int], max_digits: int = MAX_DIGITS_PER_VALUE) -> list[list[str]]:
    """All ways to cut ``digits`` into ``k`` numbers without leading zeros (``0`` alone is fine).

    A decimal point stays inside its number; no cut after it.
    """
    out: list[list[str]] = []

    def rec(start: int, k_left: int, acc: list[str]) -> None:
        if budget[0] <= 0:
            return
        rest = digits[start:]
        if k_left == 1:
            if _valid_number(rest, max_digits):
                out.append(acc + [rest])
                budget[0] -= 1
            return
        dot = rest.find(".")
        limit = len(rest) - (k_left - 1)
        if dot >= 0:
            limit = min(limit, dot)
        for L in range(1, min(limit, max_digits) + 1):
            piece = rest[:L]
            if not _valid_number(piece, max_digits):
                if piece.startswith("0"):
                    break                       # "0x…" is never a number; longer ones neither
                continue
            rec(start + L, k_left - 1, acc + [piece])

    rec(0, k, [])
    return out


def _valid_number(s: str, max_digits: int = MAX_DIGITS_PER_VALUE) -> bool:
    if not s or s.startswith(".") or s.endswith("."):
        return False
    intpart = s.split(".")[0].lstrip("+-")
    if not intpart or len(intpart) > max_digits:
        return False
    return not (len(intpart) > 1 and intpart.startswith("0"))


def decode(group_items: list[Item], kinds: list[str], budget: int,
           max_digits: int = MAX_DIGITS_PER_VALUE) -> tuple[list[Candidate], bool, bool]:
    """Candidate vectors of len(kinds) cells; returns (candidates, uncertain_positions, glued)."""
    n = len(kinds)
    toks = [it.token for it in group_items]
    glued = any(t.glued for t in toks if t.kind == "value")

    def cell(tok: Token, text: str, kind: str, split: bool) -> CellValue:
        if tok.kind == "blank":
            return CellValue(None, tok.text, tok, [f"blank cell (printed {tok.text!r})" if tok.text
                                                   else "blank cell"])
        cv = parse_value(text, kind)
        cv.token = tok
        cv.split = split
        if split:
            cv.reasons.append(f"cut from run-together digits {tok.text!r}")
        return cv

    if not glued:
        if len(toks) == n:
            return [tuple(cell(t, t.text, kinds[i], False) for i, t in enumerate(toks))], False, False
        if len(toks) > n:
            windows = []
            for s in range(len(toks) - n + 1):
                dropped = toks[:s] + toks[s + n:]
                if all(t.kind == "blank" for t in dropped):
                    win = toks[s:s + n]
                    windows.append((sum(1 for t in win if t.kind == "value"), s))
            if not windows:
                return [], False, False
            best = max(w[0] for w in windows)
            return [tuple(cell(t, t.text, kinds[i], False) for i, t in enumerate(toks[s:s + n]))
                    for score, s in windows if score == best], False, False
        # fewer cells than the row has: either cells ran together inside one delimited cell
        # ("0 23" / "713000074" in one cell) — try the splits, the relations decide — or cells
        # were lost, and which ones is unknown.
        if any(t.kind == "value" and sum(ch.isdigit() for ch in t.text) > 1 for t in toks):
            as_glued = [Item(it.kind, _as_glued(it.token), it.pos, it.hit) for it in group_items]
            cands, _, _ = decode(as_glued, kinds, budget, max_digits)
            if cands:
                return cands, False, True
        cells = [cell(t, t.text, kinds[i], False) for i, t in enumerate(toks)]
        cells += [CellValue(None, "", None, ["cell missing in the source row"]) for _ in range(n - len(toks))]
        return [tuple(cells)], True, False

    # Run-together digits: distribute the n cells over the tokens, then split each token.
    caps = []
    for i, t in enumerate(toks):
        if t.kind == "blank" and (i == 0 or i == len(toks) - 1):
            caps.append((0, 1))                 # layout padding beside a run-together cell
        elif t.kind == "blank" or not t.glued:
            caps.append((1, 1))
        else:
            digits = sum(ch.isdigit() for ch in t.text.split(".")[0]) + (1 if "." in t.text else 0)
            caps.append((1, max(1, digits)))
    if sum(c[0] for c in caps) > n or sum(c[1] for c in caps) < n:
        return [], False, True
    left = [budget]
    out: list[Candidate] = []

    def counts(i: int, remaining: int, acc: list[int]):
        if i == len(toks):
            if remaining == 0:
                yield list(acc)
            return
        lo, hi = caps[i]
        rest_lo = sum(c[0] for c in caps[i + 1:])
        rest_hi = sum(c[1] for c in caps[i + 1:])
        for k in range(lo, hi + 1):
            if remaining - k < rest_lo:
                break
            if remaining - k > rest_hi:
                continue
            yield from counts(i + 1, remaining - k, acc + [k])

    for ks in counts(0, n, []):
        per_token: list[list[list[str]]] = []
        for t, k in zip(toks, ks):
            if k == 0:
                per_token.append([[]])
            elif t.kind == "blank" or not t.glued:
                per_token.append([[t.text]])
            else:
                text = _UNIT_YUAN.sub("", t.text)
                unit = t.text[len(text):]
                sp = _splits(text.lstrip("+"), k, left, max_digits)
                if unit:
                    sp = [s[:-1] + [s[-1] + unit] for s in sp]
                per_token.append(sp)
        for combo in itertools.product(*per_token):
            cells: list[CellValue] = []
            for t, pieces in zip(toks, combo):
                for p in pieces:
                    cells.append(cell(t, p, kinds[len(cells)], t.glued and len(pieces) > 1))
            out.append(tuple(cells))
            if len(out) >= budget:
                return out, False, True
    return out, False, True


def _as_glued(tok: Token) -> Token:
    if tok.kind != "value" or tok.glued:
        return tok
    return Token(tok.kind, tok.text, tok.line, tok.cell, glued=True, delimited=tok.delimited)


# --- alignment ----------------------------------------------------------------------------------

def align(candidates: list[tuple[int, int, float]], n_rows: int) -> dict[int, int]:
    """Weighted LCS: ``candidates`` are (stream order index, form row index, weight).

    Returns form row -> candidate index, increasing in both orders, maximizing total weight.
    """
    m = len(candidates)
    if not m:
        return {}
    # dp over candidates sorted by stream position: best chain ending at candidate i
    best = [0.0] * m
    prev = [-1] * m
    for i, (pi, ri, wi) in enumerate(candidates):
        best[i] = wi
        for j in range(i):
            pj, rj, _ = candidates[j]
            if pj < pi and rj < ri and best[j] + wi > best[i]:
                best[i] = best[j] + wi
                prev[i] = j
    i = max(range(m), key=lambda k: best[k])
    chosen: dict[int, int] = {}
    while i >= 0:
        chosen[candidates[i][1]] = i
        i = prev[i]
    return chosen


# --- table assembly ---------------------------------------------------------------------------

@dataclass(slots=True)
class Tables:
    rows: dict[str, RowResult]
    apply_span: tuple[int, int] | None
    notes: list[str]


def _row_kinds(form: Form, table: str, row: RowSpec) -> tuple[list[str], list[str]]:
    if table == "active":
        return ([f"active.{row.key}.{c.key}" for c in row.columns], [c.kind for c in row.columns])
    return ([f"apply.{row.key}.{c.key}" for c in form.apply_columns], ["count"] * len(form.apply_columns))


_RELATIONS_FOR: dict[tuple, list] = {}


def relations_within(form: Form, keys: list[str]):
    """Relations entirely inside a row's cells (its row total, appeal totals), memoised."""
    memo_key = (form.template, len(form.apply_columns), len(form.apply_rows), tuple(keys))
    rels = _RELATIONS_FOR.get(memo_key)
    if rels is None:
        ks = set(keys)
        rels = _RELATIONS_FOR[memo_key] = [r for r in form.relations if set(r.keys) <= ks]
    return rels


def _decoded_row(form: Form, key: str, keys: list[str], kinds: list[str], g: Group, budget: int,
                 max_digits: int, filter_by_relations: bool = True, **kw) -> RowResult:
    cands, uncertain, glued = decode(g.items, kinds, budget, max_digits)
    readings = len(cands)
    if glued and not any(it.token.glued for it in g.items):
        # a delimited row with too few cells, read as digits run together: even a split that
        # is unique by its digits alone is a guess until a relation outside the row confirms it
        # (pingtan-2023-form-scan: "1 | 0" under a lost rule read as one cell)
        readings = max(readings, 2)
    varied = frozenset(i for i in range(len(keys)) if len({c[i].value for c in cands}) > 1)
    if filter_by_relations:
        cands = _filter_by_own_relations(form, keys, cands)
    return RowResult(key, keys, cands, uncertain_positions=uncertain, glued=glued, readings=readings,
                     varied=varied, **kw)


def _filter_by_own_relations(form: Form, keys: list[str], cands: list[Candidate]) -> list[Candidate]:
    """Keep candidates the row's own relations allow; all of them if none does."""
    rels = relations_within(form, keys)
    if len(cands) <= 1 or not rels:
        return cands
    keep = []
    for c in cands:
        vals = {k: cv.value for k, cv in zip(keys, c)}
        if all(possible(r, vals) for r in rels):
            keep.append(c)
    return keep or cands


def reconstruct(stream: list[Item], form: Form, budget: int) -> Tables:
    groups = value_groups(stream)
    by_after = {id(g.after): g for g in groups if g.after is not None}
    rows: dict[str, RowResult] = {}
    notes: list[str] = []

    def group_fits(g: Group, kinds: list[str]) -> bool:
        if g.nonblank == 0 and len(g.items) < len(kinds):
            return False
        cands, _, _ = decode(g.items, kinds, 64)
        return bool(cands)

    # -- application table (the relations live here, so it anchors the others) --
    apply_specs = list(form.apply_rows)
    apply_index = {f"apply.{r.key}": i for i, r in enumerate(apply_specs)}
    apply_cands: list[tuple[int, int, float]] = []
    cand_items: list[Item] = []
    for it in stream:
        if it.kind != "label" or it.hit is None:
            continue
        key = it.hit.key
        weight_label = it.hit.score
        if key == "header.total" and "apply.total" in apply_index:
            key, weight_label = "apply.total", 0.8
        if key not in apply_index:
            continue
        g = by_after.get(id(it))
        spec = apply_specs[apply_index[key]]
        keys, kinds = _row_kinds(form, "apply", spec)
        if g is None or not group_fits(g, kinds):
            continue
        apply_cands.append((it.pos, apply_index[key], 2.0 + weight_label))
        cand_items.append(it)
    chosen = align(apply_cands, len(apply_specs))
    anchors: dict[int, Item] = {ri: cand_items[ci] for ri, ci in chosen.items()}
    apply_span = None
    if anchors:
        first_pos = min(it.pos for it in anchors.values())
        last_item = max(anchors.values(), key=lambda it: it.pos)
        last_group = by_after[id(last_item)]
        apply_span = (first_pos, last_group.items[-1].pos)
        # start of the table: the apply header right before the first anchor
        head_pos = first_pos
        for it in stream[:first_pos][::-1]:
            if it.kind == "label" and it.hit is not None and it.hit.key == "header.apply":
                head_pos = it.pos
                if first_pos - it.pos > 400:
                    break
            elif it.kind == "label" and it.hit is not None and it.hit.key.startswith("active."):
                break
        # end of the table: the first appeal header after the last anchor
        end_pos = len(stream)
        for it in stream[apply_span[1]:]:
            if it.kind == "label" and it.hit is not None and it.hit.key == "header.appeal":
                end_pos = it.pos
                break
        for ri, it in anchors.items():
            spec = apply_specs[ri]
            keys, kinds = _row_kinds(form, "apply", spec)
            rows[f"apply.{spec.key}"] = _decoded_row(form, f"apply.{spec.key}", keys, kinds, by_after[id(it)],
                                                     budget, MAX_DIGITS_COUNT_ROW, label=it.token.text,
                                                     label_hit=it.hit)
        # floating runs fill the gaps by the form's row order
        floating = [g for g in groups
                    if (g.after is None or g.after.hit is None or not g.after.hit.key.startswith("apply."))
                    and g.nonblank > 0 and head_pos < g.pos < end_pos]
        marks = sorted((it.pos, ri) for ri, it in anchors.items())
        bounds = [(head_pos, -1)] + marks + [(end_pos, len(apply_specs))]
        for (p0, r0), (p1, r1) in zip(bounds, bounds[1:]):
            missing = list(range(r0 + 1, r1))
            if not missing:
                continue
            inside = [g for g in floating if p0 < g.pos < p1]
            fitting = [g for g in inside if group_fits(g, _row_kinds(form, "apply", apply_specs[missing[0]])[1])]
            if len(fitting) == len(missing):
                for ri, g in zip(missing, fitting):
                    spec = apply_specs[ri]
                    keys, kinds = _row_kinds(form, "apply", spec)
                    rows[f"apply.{spec.key}"] = _decoded_row(form, f"apply.{spec.key}", keys, kinds, g, budget,
                                                             MAX_DIGITS_COUNT_ROW, placed_by_order=True)
            elif inside or missing:
                notes.append(f"{len(missing)} row(s) of table 三 not found by label and "
                             f"{len(fitting)} unlabelled value row(s) between them: left for review")

    # -- active disclosure table: before the application table --
    # Its sub-tables (第二十条第（一）/（五）/（六）/（八）/（九）项) are independent and converters
    # reorder them (shanghai-kjw-2024.md prints （一） last), so each row takes its first
    # occurrence with fitting values after the table's header, not an order-aligned one.
    limit = apply_span[0] if apply_span else len(stream)
    start_active = next((it.pos for it in stream[:limit] if it.kind == "label" and it.hit is not None
                         and it.hit.key == "header.active"), 0)
    act_specs = {f"active.{r.key}": r for r in form.active_rows}
    for it in stream[start_active:limit]:
        if it.kind != "label" or it.hit is None or it.hit.key not in act_specs or it.hit.key in rows:
            continue
        g = by_after.get(id(it))
        spec = act_specs[it.hit.key]
        keys, kinds = _row_kinds(form, "active", spec)
        if g is None or not group_fits(g, kinds):
            continue
        rows[it.hit.key] = _decoded_row(form, it.hit.key, keys, kinds, g, budget, MAX_DIGITS_PER_VALUE,
                                        filter_by_relations=False, label=it.token.text, label_hit=it.hit)

    # -- appeals: the first run of numbers after the appeal header that fills 15 cells --
    start = apply_span[1] if apply_span else 0
    header_seen = False
    appeal_keys = [f"appeal.{g.key}.{r.key}" for g in form.appeal_groups for r in form.appeal_results]
    for it in stream[start:]:
        if it.kind == "label" and it.hit is not None and it.hit.key == "header.appeal":
            header_seen = it.pos
            break
    if header_seen is not False:
        for g in groups:
            if g.pos <= header_seen or g.nonblank == 0:
                continue
            if g.after is not None and g.after.hit is not None and not g.after.hit.key.startswith("header."):
                break                      # a labelled row of something else: the table is over
            row = _decoded_row(form, "appeal", appeal_keys, ["count"] * len(appeal_keys), g, budget,
                               MAX_DIGITS_COUNT_ROW)
            if not row.candidates:
                continue
            rows["appeal"] = row
            break
    return Tables(rows, apply_span, notes)


def choose(rows: dict[str, RowResult], form: Form, max_combos: int = 4000) -> None:
    """Use the relations across rows to cut down rows with several candidates (in place).

    Propagation first: a row's candidates must fit the relations given every row already
    decided; a row left with one candidate is decided and the loop goes on. What stays
    ambiguous is searched jointly when the combinations are few.
    """
    def fixed_values() -> dict[str, int | float | None]:
        vals: dict[str, int | float | None] = {}
        for r in rows.values():
            if len(r.candidates) == 1:
                vals.update({k: cv.value for k, cv in zip(r.keys, r.candidates[0])})
            elif r.candidates:
                for i, k in enumerate(r.keys):         # cells every candidate agrees on
                    vs = {c[i].value for c in r.candidates}
                    if len(vs) == 1:
                        vals[k] = next(iter(vs))
        return vals

    rels_of = {r.key: [rel for rel in form.relations if set(r.keys) & set(rel.keys)] for r in rows.values()}
    changed = True
    while changed:
        changed = False
        for r in rows.values():
            if len(r.candidates) <= 1:
                continue
            base = fixed_values()
            for k in r.keys:
                base.pop(k, None)
            keep = []
            for c in r.candidates:
                vals = dict(base)
                vals.update({k: cv.value for k, cv in zip(r.keys, c)})
                if all(possible(rel, vals) for rel in rels_of[r.key]):
                    keep.append(c)
            if keep and len(keep) < len(r.candidates):
                r.candidates = keep
                changed = True
    multi = [r for r in rows.values() if len(r.candidates) > 1]
    total = 1
    for r in multi:
        total *= len(r.candidates)
    if not multi or total > max_combos:
        return
    fixed = fixed_values()
    for r in multi:
        for k in r.keys:
            fixed.pop(k, None)
    survivors: list[tuple[Candidate, ...]] = []
    rels = [rel for rel in form.relations if any(set(r.keys) & set(rel.keys) for r in multi)]
    for combo in itertools.product(*(r.candidates for r in multi)):
        vals = dict(fixed)
        for r, c in zip(multi, combo):
            vals.update({k: cv.value for k, cv in zip(r.keys, c)})
        if all(possible(rel, vals) for rel in rels):
            survivors.append(combo)
    if not survivors:
        return
    for i, r in enumerate(multi):
        seen: list[Candidate] = []
        ids: set[tuple] = set()
        for combo in survivors:
            sig = tuple(cv.value for cv in combo[i])
            if sig not in ids:
                ids.add(sig)
                seen.append(combo[i])
        r.candidates = seen
