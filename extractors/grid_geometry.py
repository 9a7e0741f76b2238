"""Table grids from geometry, and the text clean-up every PDF/OCR cell goes through.

Two ways to a grid, both ending in the same ``GridCell`` list:

- ``lattice_from_rules``: ruling-line masks (from ``preprocess.ruling_masks``) give candidate row
  and column boundaries; a boundary segment counts as printed when enough of it is inked. Rules in
  scans are faint and broken (``../shared/devset/*-scan.pdf``: gaps of 20-60 px at 200 dpi in
  every rule), so a segment is judged by its ink *coverage*, never by connectivity: two lattice
  cells merge only where the rule between them is (nearly) absent, which is what a spanning cell
  looks like.
- ``rows_from_boxes``: for a table without rules, rows by baseline overlap of text boxes and
  columns from the header's x-ranges (a fallback; every devset table has rules).

``lines_from_grid`` turns a grid into ``Line``s: one per lattice row, holding every merged cell
that *starts* in that row, left to right, blank cells kept in place. A multi-line cell (a wrapped
row label, the vertical 三、本年度办理结果, ``商业企/业``) is one cell whose text lines are joined.

Coordinates: whatever the caller uses (page pixels for scans, PDF points for text layers).
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from models.cells import Cell, Line

# --- text normalisation -------------------------------------------------------------------

# CJK Radicals Supplement code points that pdfminer returns for whole ideographs in Chromium- and
# Word-made PDFs (notes/pdf-and-ocr.md: `人⺠政府`); NFKC leaves this block alone, so map the
# radicals that are also complete simplified characters. (Kangxi radicals U+2F00.. fold by NFKC.)
_RADICAL_SUPPLEMENT = {
    "\u2ea0": "民", "\u2e9f": "母", "\u2ec4": "西", "\u2ec5": "见", "\u2ec6": "角", "\u2ec9": "贝",
    "\u2ecb": "车", "\u2ed1": "長", "\u2ed3": "长", "\u2ed4": "门", "\u2ed8": "青", "\u2ed9": "韦",
    "\u2eda": "页", "\u2edb": "风", "\u2edc": "飞", "\u2edd": "食", "\u2ee1": "首", "\u2ee2": "马",
    "\u2ee3": "骨", "\u2ee5": "鱼", "\u2ee6": "鸟", "\u2ee7": "卤", "\u2ee8": "麦", "\u2ee9": "黄",
    "\u2eea": "黾", "\u2eec": "齐", "\u2eee": "齿", "\u2ef0": "龙", "\u2ef3": "龟", "\u2ebc": "肉",
    "\u2ec3": "覀", "\u2ed0": "钅", "\u2ec8": "讠", "\u2eb0": "纟", "\u2ee0": "饣",
}
_RADICAL_TABLE = str.maketrans(_RADICAL_SUPPLEMENT)

_CJK = r"\u3000-\u303f\u3400-\u9fff\uff00-\uffef“”‘’、，。；：（）《》"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")


def normalize_text(text: str) -> str:
    """NFKC (Kangxi radicals, full-width digits and brackets) plus the radical-supplement map.

    NFKC turns full-width （） into ASCII (); the forms data (``models/forms.py``) is written with
    ASCII brackets too, so that is what label matching expects.
    """
    if not text:
        return ""
    return unicodedata.normalize("NFKC", text.translate(_RADICAL_TABLE)).translate(_RADICAL_TABLE)


def join_cell_lines(parts: list[str]) -> str:
    """Join the physical lines of one cell: no separator between CJK, one space between Latin.

    ``商业企`` + ``业`` → ``商业企业``; ``三``/``、``/``本``… → ``三、本…``; spaces typeset inside CJK
    (``总 计``, ``只计这一情 形``) are dropped, a space between two numbers is kept (the shared
    digit-split stage decides what ``1 0`` means).
    """
    out = ""
    for p in (normalize_text(x).strip() for x in parts):
        if not p:
            continue
        if out and re.match(r"[A-Za-z0-9]", out[-1]) and re.match(r"[A-Za-z0-9]", p[0]):
            out += " " + p
        else:
            out += p
    return _SPACE_NEAR_CJK.sub("", out).strip()


# OCR confusions inside number cells (issue 3): O/o→0, l/I/|→1, S→5, B→8, Z→2; full-width digits
# are folded by NFKC first. Applied only when the whole cell then reads as a number.
_DIGIT_CONFUSIONS = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "l": "1", "I": "1", "|": "1",
                                   "i": "1", "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2", "。": ".",
                                   "，": ",", "g": "9", "q": "9"})
_NUMBER = re.compile(r"^-?\d+(?:[.,]\d+)*$")


def clean_number_text(text: str) -> tuple[str, tuple[str, ...]]:
    """(cleaned, alternatives) for a cell that should hold a number.

    Stray spaces inside a number are removed (``1 2`` in one grid cell is one number, the cell
    boundary already separates values); letter/digit confusions are mapped. When the cell does not
    read as a number after that, it is returned unchanged (``无``, ``/``, ``-``, ``251000元`` stay
    as printed for the shared stages).
    """
    t = normalize_text(text).strip()
    if not t or _NUMBER.match(t):
        return t, ()
    compact = re.sub(r"\s+", "", t)
    mapped = compact.translate(_DIGIT_CONFUSIONS).strip(".,'`·:")
    if mapped and _NUMBER.match(mapped) and (sum(c.isdigit() for c in compact) >= len(compact) / 2
                                             or len(compact) <= 2):
        return mapped, (t,)
    return t, ()


def join_title_lines(lines: list[Line], max_lines: int = 4) -> list[Line]:
    """Join the first page's title when it wraps (``洪泽区人民政府`` / ``2023年政府信息公开工作
    年度报告`` in hongze-2023.pdf; ``…工作年度`` / ``报告`` in pingtan-2021-form-scan.pdf), so the
    running text carries agency, year and 年度报告 on one line as the metadata patterns expect.

    Title = the leading one-cell lines of page 1 set larger than the median one-cell line of that
    page (≥ 1.15×), stopping at the first table row; at most ``max_lines`` are joined.
    """
    page1 = [l for l in lines if l.page in (None, 1)]
    heights = sorted(l.cells[0].bbox[3] - l.cells[0].bbox[1] for l in page1
                     if len(l.cells) == 1 and l.cells[0].bbox and l.cells[0].text)
    if len(heights) < 3:
        return lines
    median = heights[len(heights) // 2]
    run = []
    for i, l in enumerate(lines):
        if l.page not in (None, 1) or len(l.cells) != 1 or not l.cells[0].bbox:
            break
        c = l.cells[0]
        if c.bbox[3] - c.bbox[1] >= 1.15 * median and c.text:
            run.append(i)
        elif run:
            break
        if len(run) >= max_lines or i > 8:
            break
    if len(run) < 2 or run != list(range(run[0], run[-1] + 1)):
        return lines
    cells = [lines[i].cells[0] for i in run]
    box = (min(c.bbox[0] for c in cells), min(c.bbox[1] for c in cells),
           max(c.bbox[2] for c in cells), max(c.bbox[3] for c in cells))
    score = min((c.score for c in cells if not math.isnan(c.score)), default=math.nan)
    title = Line([Cell(join_cell_lines([c.text for c in cells]), cells[0].page, box, score)], lines[run[0]].page)
    return lines[:run[0]] + [title] + lines[run[-1] + 1:]


# --- grids ---------------------------------------------------------------------------------


@dataclass(slots=True)
class GridCell:
    """A (possibly merged) cell of a lattice: rows r0..r1 and columns c0..c1 inclusive."""

    r0: int
    c0: int
    r1: int
    c1: int
    bbox: tuple[float, float, float, float]
    text: str = ""
    score: float = math.nan
    alternatives: tuple[str, ...] = ()
    parts: list = field(default_factory=list)


@dataclass(slots=True)
class Lattice:
    ys: list[float]          # row boundaries, top to bottom (n_rows + 1)
    xs: list[float]          # column boundaries, left to right (n_cols + 1)
    cells: list[GridCell]

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (self.xs[0], self.ys[0], self.xs[-1], self.ys[-1])


def cluster_positions(values: list[float], weights: list[float], tol: float) -> list[float]:
    """Merge nearby 1-D positions (weighted mean), e.g. rule y's within ``tol`` px of each other."""
    if not values:
        return []
    order = np.argsort(values)
    groups: list[list[int]] = [[int(order[0])]]
    for i in order[1:]:
        if values[i] - values[groups[-1][-1]] <= tol:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    out = []
    for g in groups:
        w = np.array([weights[i] for i in g], float)
        v = np.array([values[i] for i in g], float)
        out.append(float((v * w).sum() / max(w.sum(), 1e-9)))
    return out


def _coverage(mask: np.ndarray, axis: str, pos: float, a: float, b: float, band: int) -> float:
    """Inked fraction of a rule segment: horizontal (axis='h') at y=pos from x=a..b, or vertical."""
    h, w = mask.shape
    p = int(round(pos))
    a_i, b_i = int(round(a)), int(round(b))
    if b_i <= a_i:
        return 0.0
    if axis == "h":
        strip = mask[max(0, p - band):min(h, p + band + 1), max(0, a_i):min(w, b_i)]
        prof = strip.any(axis=0) if strip.size else np.zeros(0, bool)
    else:
        strip = mask[max(0, a_i):min(h, b_i), max(0, p - band):min(w, p + band + 1)]
        prof = strip.any(axis=1) if strip.size else np.zeros(0, bool)
    return float(prof.mean()) if prof.size else 0.0


def _thin_out(pos: list[float], min_gap: float) -> list[float]:
    out: list[float] = []
    for p in pos:
        if out and p - out[-1] < min_gap:
            out[-1] = (out[-1] + p) / 2
        else:
            out.append(p)
    return out


def lattice_from_rules(h_mask: np.ndarray, v_mask: np.ndarray, region: tuple[int, int, int, int],
                       *, min_rule_px: int, tol_px: int, present_coverage: float = 0.1,
                       min_rule_px_v: int | None = None,
                       evidence: tuple[np.ndarray, np.ndarray] | None = None,
                       text_ink: np.ndarray | None = None, min_gap_px: int = 0,
                       narrow_px: int = 0) -> Lattice | None:
    """A lattice for one table region (x0, y0, x1, y1) of binary rule masks (bool arrays).

    Boundaries: y's where the horizontal mask has at least ``min_rule_px`` inked pixels in the
    region's rows (rules are broken, so the count, not the longest run), x's likewise with
    ``min_rule_px_v`` (default: the same). ``evidence``: optional finer (h, v) masks used, with
    the rule masks, to judge coverage (``preprocess.rule_evidence``); since those also catch
    text strokes, a boundary that text runs across (``text_ink`` on both sides of it, row by
    row) is judged on the rule masks alone.
    Merges: adjacent lattice cells join when the boundary segment between them is less than
    ``present_coverage`` inked. Text strokes are already out of the masks
    (``preprocess.ruling_masks``), so a spanning cell shows ~0 % there, while a broken scanned rule
    still shows its fragments (devset scans: 30-90 %); hence the low default. Edges of the region always count as boundaries.
    """
    x0, y0, x1, y1 = region
    hs = h_mask[y0:y1 + 1, x0:x1 + 1]
    vs = v_mask[y0:y1 + 1, x0:x1 + 1]
    row_ink = hs.sum(axis=1)
    col_ink = vs.sum(axis=0)
    ys_raw = [float(i) for i in np.nonzero(row_ink >= min_rule_px)[0]]
    xs_raw = [float(i) for i in np.nonzero(col_ink >= (min_rule_px_v or min_rule_px))[0]]
    ys = [y + y0 for y in cluster_positions(ys_raw, [float(row_ink[int(i)]) for i in ys_raw], tol_px)]
    xs = [x + x0 for x in cluster_positions(xs_raw, [float(col_ink[int(i)]) for i in xs_raw], tol_px)]
    # Boundaries closer than ``min_gap_px`` are one rule drawn twice or a rule that is not
    # straight (luolong-minzheng-2020-form-scan.pdf: the rule under the appeal headers sits
    # 14 px lower on the right, which split the value row in two).
    if min_gap_px:
        ys = _thin_out(ys, min_gap_px)
        xs = _thin_out(xs, min_gap_px)
    if len(ys) < 2 or len(xs) < 2:
        return None
    # Snap the outer frame to the region when the outermost rule is missing.
    if ys[0] - y0 > 3 * tol_px:
        ys.insert(0, float(y0))
    if y1 - ys[-1] > 3 * tol_px:
        ys.append(float(y1))
    if xs[0] - x0 > 3 * tol_px:
        xs.insert(0, float(x0))
    if x1 - xs[-1] > 3 * tol_px:
        xs.append(float(x1))
    nr, nc = len(ys) - 1, len(xs) - 1
    band = max(2, tol_px // 2)
    near = 3 * band

    def crossed(axis: str, pos: float, a: float, b: float) -> bool:
        """Text on both sides of the boundary along most of its inked stretch: a spanning cell."""
        if text_ink is None:
            return False
        p, a_i, b_i = int(round(pos)), int(round(a)), int(round(b))
        if axis == "v":
            left = text_ink[a_i:b_i, max(0, p - band - near):max(0, p - band)].any(axis=1)
            right = text_ink[a_i:b_i, p + band + 1:p + band + 1 + near].any(axis=1)
        else:
            left = text_ink[max(0, p - band - near):max(0, p - band), a_i:b_i].any(axis=0)
            right = text_ink[p + band + 1:p + band + 1 + near, a_i:b_i].any(axis=0)
        if left.size == 0 or right.size == 0 or left.shape != right.shape:
            return False
        either = int((left | right).sum())
        return either >= 2 * band and (left & right).sum() >= 0.5 * either

    def present(axis: str, pos: float, a: float, b: float) -> bool:
        main = h_mask if axis == "h" else v_mask
        if _coverage(main, axis, pos, a, b, band) >= present_coverage:
            return True
        if evidence is None:
            return False
        fine = evidence[0] if axis == "h" else evidence[1]
        # Broken rules in short rows leave only short pieces (pingtan-2021-form-scan.pdf).
        return (_coverage(main | fine, axis, pos, a, b, band) >= 2.5 * present_coverage
                and not crossed(axis, pos, a, b))
    # 1) Vertical boundaries per row; a rule missing in one row only, between rows where it is
    #    printed, of a boundary printed in most rows, is a gap in a broken scanned rule (not a
    #    spanning cell) unless text runs across it. pingtan-2021-form-scan.pdf row 4.保护第三方
    #    lost a whole 55-px piece of one value-column rule and read ``0 0`` as ``00``.
    vpres = [[present("v", xs[c], ys[r] + band, ys[r + 1] - band) for c in range(nc + 1)] for r in range(nr)]
    for c in range(1, nc):
        strength = sum(vpres[r][c] for r in range(nr)) / nr
        if strength < 0.45:
            continue
        for r in range(nr):
            if vpres[r][c]:
                continue
            nbrs = [vpres[q][c] for q in (r - 1, r + 1) if 0 <= q < nr]
            if not nbrs or not all(nbrs):
                continue
            if len(nbrs) == 2 and strength >= 0.6:
                if not crossed("v", xs[c], ys[r] + band, ys[r + 1] - band):
                    vpres[r][c] = True
            elif (strength >= 0.6 and narrow_px and xs[c] - xs[c - 1] < narrow_px and xs[c + 1] - xs[c] < narrow_px
                  and not crossed("v", xs[c], ys[r] + band, ys[r + 1] - band)):
                # First/last row between two narrow (value) columns: numbers side by side under a
                # broken rule (pingtan-2023-form-scan.pdf's appeal row read ``1 0`` as ``1.10``).
                vpres[r][c] = True
            elif strength >= 0.45 and text_ink is not None and text_ink[int(ys[r]) + near:int(ys[r + 1]) - near,
                                                   int(xs[c - 1]) + near:int(xs[c + 1]) - near].sum() < 4 * near:
                # First/last row: only blank cells are split (luolong-minzheng-2020-form-scan.pdf's
                # five blank 行政复议 cells under broken rules); a label there may span.
                vpres[r][c] = True
    # Within each lattice row, runs of columns with no vertical rule between them.
    segments: list[list[list[int]]] = []          # per row: [c0, c1, r0] (r0 = row where it starts)
    for r in range(nr):
        row = [[0, 0, r]]
        for c in range(1, nc):
            if not vpres[r][c]:
                row[-1][1] = c
            else:
                row.append([c, c, r])
        segments.append(row)
    # 2) A segment continues the one above it when both span the same columns and the
    #    horizontal rule between them is absent over that span. Merging whole segments keeps
    #    every merged cell a rectangle (a broken rule can no longer join an L-shape that
    #    swallows its neighbours).
    #    The same repair as above for a horizontal rule missing over one cell while printed
    #    over both neighbours of that cell (same row boundary, adjacent columns).
    hpres = [[present("h", ys[r], xs[c] + band, xs[c + 1] - band) for c in range(nc)] for r in range(nr)]
    for r in range(1, nr):
        strength = sum(hpres[r]) / nc
        for c in range(nc):
            if hpres[r][c] or strength < 0.6:
                continue
            nbrs = [hpres[r][k] for k in (c - 1, c + 1) if 0 <= k < nc]
            if len(nbrs) == 2 and all(nbrs) and not crossed("h", ys[r], xs[c] + band, xs[c + 1] - band):
                hpres[r][c] = True
    for r in range(1, nr):
        above = {(s[0], s[1]): s for s in segments[r - 1]}
        for s in segments[r]:
            up = above.get((s[0], s[1]))
            if up is None:
                continue
            if s[0] == s[1]:
                printed = hpres[r][s[0]]
            else:
                printed = present("h", ys[r], xs[s[0]] + band, xs[s[1] + 1] - band)
            if not printed:
                s[2] = up[2]
    spans: dict[tuple[int, int, int], int] = {}
    for r in range(nr):
        for c0, c1, r0 in segments[r]:
            spans[(r0, c0, c1)] = r
    cells = [GridCell(r0, c0, r1, c1, (xs[c0], ys[r0], xs[c1 + 1], ys[r1 + 1]))
             for (r0, c0, c1), r1 in spans.items()]
    cells.sort(key=lambda g: (g.r0, g.c0))
    return Lattice(ys, xs, cells)


def lines_from_grid(lattice: Lattice, page: int) -> list[Line]:
    """One ``Line`` per lattice row with every cell starting in it, left to right.

    Rows where no cell starts (all spanned from above) yield nothing. A row whose cells are all
    blank is dropped too: it is a sliver between two close rules, not a printed row.
    """
    by_row: dict[int, list[GridCell]] = {}
    for g in lattice.cells:
        by_row.setdefault(g.r0, []).append(g)
    out = []
    for r in sorted(by_row):
        cells = sorted(by_row[r], key=lambda g: g.c0)
        if not any(g.text for g in cells):
            continue
        out.append(Line([Cell(g.text, page, tuple(round(v, 2) for v in g.bbox), g.score, g.alternatives)
                         for g in cells], page))
    return out


# --- grids without rules: rows by baseline, columns by header x-ranges ----------------------------


@dataclass(slots=True)
class TextBox:
    text: str
    bbox: tuple[float, float, float, float]
    score: float = math.nan


def rows_from_boxes(boxes: list[TextBox], *, overlap: float = 0.5) -> list[list[TextBox]]:
    """Group boxes into printed rows: a box joins a row when it overlaps the row's vertical extent
    by ``overlap`` of its own height (baselines of one row agree; a wrapped label's second line
    does not overlap the first)."""
    rows: list[tuple[float, float, list[TextBox]]] = []
    for b in sorted(boxes, key=lambda b: (b.bbox[1] + b.bbox[3]) / 2):
        h = max(b.bbox[3] - b.bbox[1], 1e-6)
        for i, (top, bot, members) in enumerate(rows):
            inter = min(bot, b.bbox[3]) - max(top, b.bbox[1])
            if inter >= overlap * min(h, bot - top):
                members.append(b)
                rows[i] = (min(top, b.bbox[1]), max(bot, b.bbox[3]), members)
                break
        else:
            rows.append((b.bbox[1], b.bbox[3], [b]))
    return [sorted(m, key=lambda b: b.bbox[0]) for _, _, m in sorted(rows, key=lambda r: r[0])]


def split_row_by_gaps(row: list[TextBox], gap: float) -> list[TextBox]:
    """Merge boxes of one printed row whose horizontal gap is under ``gap`` (one cell's words)."""
    out: list[TextBox] = []
    for b in row:
        if out and b.bbox[0] - out[-1].bbox[2] < gap:
            p = out[-1]
            out[-1] = TextBox(join_cell_lines([p.text, b.text]) if not (p.text[-1:].isdigit() and b.text[:1].isdigit())
                              else p.text + " " + b.text,
                              (min(p.bbox[0], b.bbox[0]), min(p.bbox[1], b.bbox[1]),
                               max(p.bbox[2], b.bbox[2]), max(p.bbox[3], b.bbox[3])),
                              min(p.score, b.score) if not (math.isnan(p.score) or math.isnan(b.score))
                              else p.score)
        else:
            out.append(b)
    return out
