"""Scans: PNG/JPEG/TIFF (multi-page) and the OCR path for image-only PDF pages.

One page goes: red stamp out → contrast → 90/180° orientation → deskew → ruling masks → table
lattices (``grid_geometry.lattice_from_rules``) → every lattice cell's ink split into text lines →
one batched call of the PP-OCRv4 recogniser on upright crops with the rules erased → Lines.

The text detector is not used: cells come from the rules, and text lines inside a cell or
outside tables from the ink's row projection. That is what fixes the measured PP-OCR failures on
these forms (notes/pdf-and-ocr.md, issue 3): a lone ``0`` is never "not detected" because every
inked cell is read; no box is turned 90° or 180° (no angle classifier, no tall-box rotation), so
9 stays 9; rule fragments are erased before the crop, so 0 is not ``10``; and two rows' digits
never share a box because the crop stops at the cell's rule.

Coordinates: ``bbox`` in pixels of the page image as given (undoing the deskew rotation), times
``scale`` (read_pdf passes 72/dpi to get PDF points). ``score`` = recogniser confidence, the
minimum over a cell's text lines.
"""
from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from models.cells import Cell, Line, ReadDocument
from models.errors import CORRUPT, EMPTY, TOO_LARGE, UNSUPPORTED, InputError
from models.options import ExtractOptions

from . import deadline
from . import preprocess as pp
from .grid_geometry import Lattice, clean_number_text, join_title_lines, join_cell_lines, lattice_from_rules, lines_from_grid
from .ocr import get_engine

log = logging.getLogger(__name__)

# A band of ink taller than this many body-text em is more than one text line (body text in
# these forms is 9-12 pt; two lines of 9 pt with leading are > 1.6 em of 10.5 pt).
ONE_LINE_EM = 1.35
RETRY_BELOW = 0.6          # a cell reading under this confidence gets a second look
BODY_PT = 10.5


@dataclass(slots=True)
class _Crop:
    image: np.ndarray
    owner: object          # the GridCell or prose segment it belongs to
    order: int
    y_mid: float = math.nan   # centre of the text line (deskewed pixels), to split stacked cells


@dataclass(slots=True)
class _Segment:
    """A run of text outside tables (one printed line, or a wide-gap piece of it)."""

    bbox: tuple[float, float, float, float]
    text: str = ""
    score: float = math.nan
    parts: list = field(default_factory=list)


# --- geometry helpers -------------------------------------------------------------------------


def _bands(rows_ink: np.ndarray, min_gap: int = 1) -> list[tuple[int, int]]:
    """Maximal runs of True in a 1-D array as (start, end_exclusive), joining gaps < min_gap."""
    idx = np.flatnonzero(np.diff(np.concatenate(([0], rows_ink.astype(np.int8), [0]))))
    runs = list(zip(idx[::2], idx[1::2]))
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if out and a - out[-1][1] < min_gap:
            out[-1] = (out[-1][0], int(b))
        else:
            out.append((int(a), int(b)))
    return out


def _merge_into_lines(bands: list[tuple[int, int]], max_line: int) -> list[tuple[int, int]]:
    """Join stacked bands while the union stays within one text line's height: the strokes of 三
    or 二 are separate bands, two wrapped label lines are not."""
    out: list[tuple[int, int]] = []
    for a, b in bands:
        if out and b - out[-1][0] <= max_line:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _significant(ink: np.ndarray, dpi: float, min_area: int | None = None) -> np.ndarray:
    """Ink without paper specks: components smaller than a decimal point (~1.2 pt square) go.
    The scans carry salt noise of 1-3 px dots (devset *-scan.pdf)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    if min_area is None:
        min_area = max(6, int(round((dpi / 72 * 1.2) ** 2 * 0.8)))
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[labels]


def _crop(gray: np.ndarray, x0: int, y0: int, x1: int, y1: int, pad: int) -> np.ndarray:
    h, w = gray.shape
    c = gray[max(0, y0 - pad):min(h, y1 + pad), max(0, x0 - pad):min(w, x1 + pad)]
    # White margin: the recogniser reads a glyph touching the crop edge worse.
    return cv2.copyMakeBorder(c, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)


# --- one page ---------------------------------------------------------------------------------


def _orientation(gray: np.ndarray, dpi: float, engine) -> int:
    """Quarter turns (counter-clockwise) that make the page upright, decided by the recogniser's
    confidence on the widest text lines read each way; 0 unless another way reads clearly
    better (a page with one table row and three headings, pingtan-2021-form-scan.pdf page 3,
    must not flip on noise)."""
    ink = pp.ink_mask(gray, dpi)
    h_mask, v_mask = pp.ruling_masks(ink, dpi)
    text = _glyph_mask(ink & ~(h_mask | v_mask), dpi)
    candidates = [1, 3] if pp.text_runs_vertical(text) else [0, 2]
    scores = {}
    for q in candidates:
        g = pp.rotate_quarter(gray, q)
        t = pp.rotate_quarter(text, q)
        lines = _merge_into_lines(_bands(t.any(axis=1), min_gap=2), pp.px(dpi, BODY_PT * 1.6))
        em = dpi / 72 * BODY_PT
        spans = []
        for a, b in lines:
            # Single printed lines only (0.6-1.8 em high, >= 6 em wide); a table row's band holds
            # labels, digits and rule remnants and reads poorly either way up.
            if not 0.6 * em <= b - a <= 1.8 * em:
                continue
            cols = np.flatnonzero(t[a:b].any(axis=0))
            if len(cols) and cols[-1] - cols[0] >= 6 * em:
                x0 = int(cols[0])
                spans.append((int(cols[-1] - cols[0]), a, b, x0, min(int(cols[-1]) + 1, x0 + int(14 * em))))
        spans.sort(reverse=True)
        crops = [_crop(g, x0, a, x1, b, 4) for _, a, b, x0, x1 in spans[:5]]
        if len(crops) < 2:
            return 0
        scores[q] = float(np.mean([r.score for r in engine.recognize(crops)]))
    first, second = candidates
    # An upside-down page reads at ~0.1-0.4; an upright one at > 0.8 (devset scans). Turn only on
    # a clear verdict: a wrong turn loses the whole page.
    if scores[first] < 0.6 and scores[second] > scores[first] + 0.25:
        return second
    return first


def _erase_lattice_rules(sig: np.ndarray, lat: Lattice, half: int) -> None:
    """Clear ink along every cell's own borders, in place. Pieces of a broken rule shorter than the
    ruling kernel are not in the masks, and the recogniser reads them as 口/国/■/1 (devset
    *-scan.pdf); text does not sit on a rule. Only printed borders: a lattice line running
    through a spanning cell would cut its number (hongze-2023-scan.pdf: 195 → 95)."""
    for cell in lat.cells:
        x0, y0, x1, y1 = (int(round(v)) for v in cell.bbox)
        sig[max(0, y0 - half):y0 + half + 1, max(0, x0 - half):x1 + half + 1] = False
        sig[max(0, y1 - half):y1 + half + 1, max(0, x0 - half):x1 + half + 1] = False
        sig[max(0, y0 - half):y1 + half + 1, max(0, x0 - half):x0 + half + 1] = False
        sig[max(0, y0 - half):y1 + half + 1, max(0, x1 - half):x1 + half + 1] = False


def _glyph_mask(sub: np.ndarray, dpi: float) -> np.ndarray:
    """The part of a cell's ink that is text: components of glyph size, plus small ones (a decimal
    point, the dot of ``1.``) lying between glyphs of the same line. Isolated dots are paper noise
    (devset *-scan.pdf sprinkle 3-5 px dots everywhere) and would be read as ``.``/``'``/``·``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(sub.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(sub, bool)
    em = dpi / 72 * BODY_PT
    w, h, area = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_AREA]
    glyph = (np.maximum(w, h) >= 0.3 * em) & (area >= 0.02 * em * em)
    # Long thin strokes are rule pieces or the scanner's page edge, not glyphs.
    glyph &= ~((h > 3 * em) & (w < 0.6 * em)) & ~((w > 4 * em) & (h < 0.6 * em))
    glyph &= ~((h > 5 * em) & (w > 5 * em))      # scanner shadows, photos: not text
    keep = np.concatenate(([False], glyph))
    if glyph.any():
        gx0 = stats[1:, 0][glyph].min()
        gx1 = (stats[1:, 0] + w)[glyph].max()
        gy0 = stats[1:, 1][glyph].min()
        gy1 = (stats[1:, 1] + h)[glyph].max()
        cx = stats[1:, 0] + w / 2
        cy = stats[1:, 1] + h / 2
        between = (~glyph) & (cx > gx0) & (cx < gx1) & (cy > gy0) & (cy < gy1) & (area >= 3)
        keep[1:] |= between
    return keep[labels]


def _cell_crops(gray: np.ndarray, sig: np.ndarray, box: tuple[float, float, float, float],
                dpi: float) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Upright crops of the text lines inside one cell (empty list = printed blank).

    Each crop shows only the cell's glyphs on white, with a margin of ~0.3 line heights: the
    recogniser read a tight lone ``0`` as ``o`` and a dot beside it as part of the number."""
    inset = pp.px(dpi, 2.2)
    x0, y0, x1, y1 = (int(round(box[0])) + inset, int(round(box[1])) + inset,
                      int(round(box[2])) - inset, int(round(box[3])) - inset)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return []
    sub = sig[y0:y1, x0:x1]
    if not sub.any():
        return []
    glyphs = _glyph_mask(sub, dpi)
    if not glyphs.any():
        return []
    one_line = pp.px(dpi, BODY_PT * ONE_LINE_EM)
    out = []
    for a, b in _merge_into_lines(_bands(glyphs.any(axis=1)), one_line):
        cols = np.flatnonzero(glyphs[a:b].any(axis=0))
        bx0, bx1 = x0 + int(cols[0]), x0 + int(cols[-1]) + 1
        out.append((_glyph_crop(gray, glyphs[a:b, cols[0]:cols[-1] + 1], bx0, y0 + a),
                    (bx0, y0 + a, bx1, y0 + b)))
    return out


def _glyph_crop(gray: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """White canvas with the masked glyphs' grey pixels (mask grown by 1 px for the anti-aliased
    edge), margin 0.3 × height on each side."""
    h, w = mask.shape
    m = max(2, int(round(0.3 * h)))
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    region = gray[y0:y0 + h, x0:x0 + w]
    canvas = np.full((h + 2 * m, w + 2 * m), 255, np.uint8)
    canvas[m:m + h, m:m + w][grown] = region[grown]
    return canvas


def _prose_segments(gray: np.ndarray, sig: np.ndarray, dpi: float) -> list[tuple[_Segment, list]]:
    """Text outside tables: printed lines by row projection, split into pieces at gaps wider than
    2.5 line heights (a right-aligned date, an un-ruled table's columns)."""
    out = []
    sig = _glyph_mask(sig, dpi)
    rows = _bands(sig.any(axis=1), min_gap=2)
    body = pp.px(dpi, BODY_PT)
    rows = _merge_into_lines(rows, int(body * 0.9))
    for a, b in rows:
        if b - a < max(3, body // 5) and sig[a:b].sum() < body * 2:
            continue            # specks and rule remnants
        band = sig[a:b]
        cols = _bands(band.any(axis=0), min_gap=int(2.5 * max(b - a, body // 2)))
        for c0, c1 in cols:
            if band[:, c0:c1].sum() < 10 or c1 - c0 < body * 0.3 or (c1 - c0 < body * 0.6 and b - a < body * 0.6):
                continue        # a lone speck or scratch (devset scans: 4-px-wide strokes read as 1/I)
            seg = _Segment((float(c0), float(a), float(c1), float(b)))
            # Long lines are read in pieces of ~10 line heights, cut at the emptiest column near
            # each step: PP-OCRv4's recogniser mixes globally along the width, so one 2000-px line
            # costs far more than five 400-px pieces (hongze-2023-scan.pdf page 2: 13 s → ~2 s).
            height = b - a
            cuts = [c0]
            step = 10 * max(height, 8)
            ink_cols = band.sum(axis=0)
            while c1 - cuts[-1] > step + 2 * height:
                lo, hi = cuts[-1] + step - height, cuts[-1] + step + height
                cuts.append(int(lo + np.argmin(ink_cols[lo:hi])))
            cuts.append(c1)
            out.append((seg, [_crop(gray, x0, a, x1, b, pp.px(dpi, 1.5)) for x0, x1 in zip(cuts, cuts[1:])]))
    return out


def ocr_page_image(image: np.ndarray, page_no: int, options: ExtractOptions = ExtractOptions(), *,
                   scale: float = 1.0, dpi: float | None = None) -> tuple[list[Line], str, list[str]]:
    """(lines, text, warnings) of one page image (BGR or gray uint8). ``dpi`` defaults to
    ``options.render_dpi``; bboxes are image pixels × ``scale``."""
    dpi = float(dpi or options.render_dpi)
    engine = get_engine(options)
    warnings: list[str] = []
    img = pp.remove_red_stamp(image)
    gray = pp.stretch_contrast(pp.to_gray(img))
    quarters = _orientation(gray, dpi, engine)
    if quarters:
        gray = pp.rotate_quarter(gray, quarters)
        warnings.append(f"page {page_no}: turned {quarters * 90}° to read it upright")
    h0, w0 = gray.shape
    angle = pp.estimate_skew(pp.ink_mask(gray, dpi), dpi)
    gray = pp.rotate(gray, angle)
    ink = pp.ink_mask(gray, dpi)
    h_mask, v_mask = pp.ruling_masks(ink, dpi)
    # Erase only long vertical rules: the 12-pt vertical kernel that finds a one-row table's
    # rules also keeps a tall digit 1 next to its neighbour (hongze-2023-scan.pdf: 195 → 95).
    long_v = cv2.morphologyEx(v_mask.astype(np.uint8), cv2.MORPH_OPEN,
                              cv2.getStructuringElement(cv2.MORPH_RECT, (1, pp.px(dpi, 20)))) > 0
    rules = h_mask | long_v
    evidence = pp.rule_evidence(ink, dpi)
    clean = pp.erase(gray, rules, dpi)
    grown = cv2.dilate(rules.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, pp.px(dpi, 1)))
    # Inside cells even a 2×3-px decimal point counts (shanghai-bgt-2019-form-scan.pdf: 25.1 was
    # read as 251 when it was dropped); isolated dots there are removed by ``_glyph_mask``.
    # Outside tables the stricter default keeps noise clusters from becoming "lines".
    sig = _significant(ink & (grown == 0), dpi, min_area=3)
    prose_sig = _significant(ink & (grown == 0), dpi)
    edge = pp.px(dpi, 6)       # no text within 6 pt of the paper's edge; scanner shadows are
    sig[:edge], sig[-edge:], sig[:, :edge], sig[:, -edge:] = False, False, False, False
    prose_sig[~sig] = False

    crops: list[_Crop] = []
    lattices: list[Lattice] = []
    outside = prose_sig
    for region in pp.table_regions(h_mask, v_mask, dpi):
        x0, y0, x1, y1 = region
        lat = lattice_from_rules(h_mask, v_mask, region,
                                 min_rule_px=max(pp.px(dpi, 20), int(0.12 * (x1 - x0))),
                                 min_rule_px_v=max(pp.px(dpi, 4), min(int(0.12 * (y1 - y0)), pp.px(dpi, 40))),
                                 tol_px=pp.px(dpi, 3), evidence=evidence, text_ink=sig,
                                 min_gap_px=pp.px(dpi, 6), narrow_px=pp.px(dpi, 3.2 * BODY_PT))
        if lat is None:
            continue
        lattices.append(lat)
        _erase_lattice_rules(sig, lat, pp.px(dpi, 1.5))
        m = pp.px(dpi, 2)
        outside[max(0, y0 - m):y1 + m, max(0, x0 - m):x1 + m] = False
        for cell in lat.cells:
            for i, (crop, box) in enumerate(_cell_crops(clean, sig, cell.bbox, dpi)):
                crops.append(_Crop(crop, cell, i, (box[1] + box[3]) / 2))
    segments = []
    for seg, seg_crops in _prose_segments(clean, outside, dpi):
        segments.append(seg)
        crops.extend(_Crop(c, seg, i) for i, c in enumerate(seg_crops))

    readings = engine.recognize([c.image for c in crops])
    # Second look at what the recogniser could not read: the same glyphs binarised, with a
    # wider margin. A lone ``0·`` came back empty at score 0 (pingtan-2021-form-scan.pdf p. 3).
    retry = [i for i, r in enumerate(readings) if r.score < RETRY_BELOW and not isinstance(crops[i].owner, _Segment)]
    if retry:
        again = engine.recognize([_variant(crops[i].image) for i in retry])
        for i, r in zip(retry, again):
            if r.text and r.score > readings[i].score:
                readings[i] = r
    for crop, reading in zip(crops, readings):
        crop.owner.parts.append((crop.order, reading.text, reading.score, crop.y_mid))

    # Back from the deskewed, turned frame to the input image's pixels (then × scale).
    inv = cv2.invertAffineTransform(cv2.getRotationMatrix2D((w0 / 2, h0 / 2), angle, 1.0))

    def to_page(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        pts = np.array([[b[0], b[1], 1], [b[2], b[1], 1], [b[0], b[3], 1], [b[2], b[3], 1]], float)
        xy = pts @ inv.T
        if quarters:
            xy = _unturn(xy, quarters, w0, h0)
        return (round(float(xy[:, 0].min()) * scale, 2), round(float(xy[:, 1].min()) * scale, 2),
                round(float(xy[:, 0].max()) * scale, 2), round(float(xy[:, 1].max()) * scale, 2))

    placed: list[tuple[float, Line]] = []
    for lat in lattices:
        lat.cells = _split_stacked_numbers(lat)
        for cell in lat.cells:
            parts = sorted(cell.parts)
            text = join_cell_lines([p[1] for p in parts])
            cell.text, cell.alternatives = clean_number_text(text)
            cell.score = min((p[2] for p in parts), default=math.nan)
            cell.bbox = to_page(cell.bbox)
        for line in lines_from_grid(lat, page_no):
            placed.append((min(c.bbox[1] for c in line.cells), line))
    for seg in segments:
        parts = sorted(seg.parts)
        seg.text = join_cell_lines([p[1] for p in parts])
        if not seg.text or min((p[2] for p in parts), default=0.0) < 0.25:
            continue            # noise read as a stray glyph (score < 0.25 on every devset scan)
        seg.score = min((p[2] for p in parts), default=math.nan)
        box = to_page(seg.bbox)
        placed.append((box[1], Line([Cell(seg.text, page_no, box, seg.score)], page_no)))
    # Reading order: top to bottom; pieces of one printed line left to right become one Line.
    placed.sort(key=lambda t: t[0])
    lines = _join_same_row(placed, tol=pp.px(dpi, 4) * scale)
    if page_no == 1:
        lines = join_title_lines(lines)
    text = "\n".join(" ".join(c.text for c in l.cells if c.text) for l in lines)
    return lines, text, warnings


def _split_stacked_numbers(lat: Lattice) -> list:
    """A one-column cell spanning k lattice rows whose k text lines are numbers, one in each row's
    band, is k cells: the rule between them was lost in the scan, not printed away
    (shanghai-kjw-2024-form-scan.pdf: 0 over 1 read as one cell ``01``)."""
    from .grid_geometry import GridCell
    out = []
    for cell in lat.cells:
        k = cell.r1 - cell.r0 + 1
        parts = sorted(cell.parts)
        if k < 2 or cell.c0 != cell.c1 or not parts or len(parts) > k or \
                not all(clean_number_text(p[1])[0].replace(".", "", 1).isdigit() for p in parts):
            out.append(cell)
            continue
        rows = [next((r for r in range(cell.r0, cell.r1 + 1) if lat.ys[r] <= p[3] < lat.ys[r + 1]), None)
                for p in parts]
        if None in rows or len(set(rows)) != len(rows):
            out.append(cell)
            continue
        # Rows of the span without a number get a blank cell (flagged downstream as blank).
        by_row = dict(zip(rows, parts))
        for r in range(cell.r0, cell.r1 + 1):
            g = GridCell(r, cell.c0, r, cell.c1, (cell.bbox[0], lat.ys[r], cell.bbox[2], lat.ys[r + 1]))
            g.parts = [by_row[r]] if r in by_row else []
            out.append(g)
    out.sort(key=lambda g: (g.r0, g.c0))
    return out


def _variant(crop: np.ndarray) -> np.ndarray:
    """Otsu-binarised crop with a margin of half its height: a second reading for weak crops."""
    _, bw = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    m = max(2, crop.shape[0] // 4)
    return cv2.copyMakeBorder(bw, m, m, m, m, cv2.BORDER_CONSTANT, value=255)


def _unturn(xy: np.ndarray, quarters: int, w_turned: int, h_turned: int) -> np.ndarray:
    """Map points of an image turned by quarters×90° CCW (np.rot90) back to the original."""
    out = xy.copy()
    for _ in range(quarters % 4):
        # np.rot90 CCW once: original (x, y) → (y, W_orig - 1 - x); inverse: x = W_orig-1-y', y = x'
        x, y = out[:, 0].copy(), out[:, 1].copy()
        w_orig = h_turned
        out[:, 0] = w_orig - 1 - y
        out[:, 1] = x
        w_turned, h_turned = h_turned, w_turned
    return out


def _join_same_row(placed: list[tuple[float, Line]], tol: float) -> list[Line]:
    """Prose pieces that share a printed row (top within ``tol``) become one multi-cell Line;
    table rows stay as they are."""
    out: list[Line] = []
    last_top = None
    last_prose = False
    for top, line in placed:
        prose = len(line.cells) == 1 and not math.isnan(line.cells[0].score) and out and last_prose
        if prose and last_top is not None and abs(top - last_top) <= tol and len(out[-1].cells) >= 1:
            out[-1].cells.extend(line.cells)
            out[-1].cells.sort(key=lambda c: c.bbox[0])
            continue
        out.append(line)
        last_top = top
        last_prose = len(line.cells) == 1
    return out


# --- images -------------------------------------------------------------------------------------

_A4_LONG_IN = 11.69


def _image_dpi(img, width: int, height: int) -> float:
    """Declared dpi when plausible, else assume the long side is an A4 page (phone photos carry
    72 dpi by default, which is never the scan resolution of a full page)."""
    dpi = img.info.get("dpi")
    try:
        d = float(dpi[0]) if dpi else 0.0
    except (TypeError, ValueError, IndexError):
        d = 0.0
    est = max(width, height) / _A4_LONG_IN
    if 100 <= d <= 1200 and 0.5 < d / est < 2:
        return d
    return max(72.0, min(600.0, est))


def read_image(data: bytes, options: ExtractOptions = ExtractOptions()) -> ReadDocument:
    """Read a PNG/JPEG/TIFF/BMP/WebP (every TIFF frame is a page). Raises ``InputError`` for empty,
    undecodable, over-pixel-limit or over-page-limit files; an image without tables is read as
    text (the shared stages then report "no tables")."""
    from PIL import Image, UnidentifiedImageError
    if not data:
        raise InputError(EMPTY, "The image is empty (0 bytes); upload the scan itself.")
    limit = options.limits.max_image_pixels
    try:
        img = Image.open(io.BytesIO(data))   # reads the header only; nothing is decoded yet
    except Image.DecompressionBombError:
        raise InputError(TOO_LARGE, f"The image declares more than {limit // 1_000_000} megapixels; "
                         "scan at 300 dpi or less.") from None
    except UnidentifiedImageError:
        raise InputError(UNSUPPORTED, "The image cannot be decoded (unknown or damaged format); "
                         "save it again as PNG or JPEG.") from None
    except Exception:
        raise InputError(CORRUPT, "The image file is damaged; save it again as PNG or JPEG.") from None
    n_frames = int(getattr(img, "n_frames", 1) or 1)
    if n_frames > options.limits.max_pages:
        raise InputError(TOO_LARGE, f"The image has {n_frames} pages, over the {options.limits.max_pages}-page "
                         "limit; split it.")
    lines: list[Line] = []
    texts: list[str] = []
    warnings: list[str] = []
    for frame in range(n_frames):
        deadline.check(f"image page {frame + 1} of {n_frames}")
        try:
            img.seek(frame)
        except EOFError:
            break
        w, h = img.size
        if w * h > limit:
            raise InputError(TOO_LARGE, f"Page {frame + 1} of the image is {w}×{h} pixels, over the "
                             f"{limit // 1_000_000}-megapixel limit; scan at 300 dpi or less.")
        try:
            # PIL's own bomb guard would raise at 2x its default; our limit was checked above.
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = max(limit, 1)
            try:
                rgb = img.convert("RGB")
            finally:
                Image.MAX_IMAGE_PIXELS = old
        except (OSError, SyntaxError, ValueError):
            raise InputError(CORRUPT, f"Page {frame + 1} of the image is truncated or damaged; "
                             "save it again as PNG or JPEG.") from None
        arr = np.asarray(rgb)[:, :, ::-1].copy()
        page_lines, text, page_warn = ocr_page_image(arr, frame + 1, options, dpi=_image_dpi(img, w, h))
        lines.extend(page_lines)
        texts.append(text)
        warnings.extend(page_warn)
    return ReadDocument(lines=lines, text="\n".join(texts), format="scan", pages=n_frames, warnings=warnings)
