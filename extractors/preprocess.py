"""Page-image clean-up before OCR: red stamps, contrast, deskew, 90/180° orientation, ruling lines.

All functions are pure (numpy in, numpy out). Sizes are given in pixels at the caller's dpi and
scaled with ``px(dpi, points)``, so the same rule works for a 150-dpi phone scan and a 300-dpi TIFF.
Why each step exists (measured on ``../shared/devset/*-scan.pdf``, notes/pdf-and-ocr.md):

- deskew: the recogniser reads a tilted digit worse, and the lattice needs horizontal rules;
  the angle classifier is never used (it flips short numbers: 9→6, 19→61), so the page is
  turned once here instead;
- ruling masks: the lattice comes from them, and erasing them keeps rule fragments out of
  number crops (a broken rule inside a box was read as ``1``: 0→10, 753→1753);
- red stamp removal: a 公章 over the table's corner otherwise inks cells red-grey.
"""
from __future__ import annotations


import cv2
import numpy as np


def px(dpi: float, points: float) -> int:
    """``points`` (1/72 in) as a pixel count at ``dpi``, at least 1."""
    return max(1, int(round(points * dpi / 72.0)))


def remove_red_stamp(bgr: np.ndarray) -> np.ndarray:
    """Whiten saturated red pixels (公章 ink); black and grey text is untouched."""
    if bgr.ndim != 3:
        return bgr
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    h, s, v = hsv[:, :, 0], hsv[:, :, 1], hsv[:, :, 2]
    red = ((h <= 12) | (h >= 165)) & (s >= 70) & (v >= 80)
    if not red.any():
        return bgr
    out = bgr.copy()
    out[red] = 255
    return out


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def stretch_contrast(gray: np.ndarray) -> np.ndarray:
    """Map the 1st..99.5th percentile to 0..255: faint scans get dark text and white paper."""
    lo, hi = np.percentile(gray[::4, ::4], (1, 99.5))
    if hi - lo < 30:        # blank or flat page: nothing to stretch
        return gray
    out = (gray.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(out, 0, 255).astype(np.uint8)


def ink_mask(gray: np.ndarray, dpi: float) -> np.ndarray:
    """Dark-on-light ink as a bool mask. Adaptive, because scans shade from centre to edge and
    faint rules are lighter than text; the block spans a few characters."""
    block = px(dpi, 18) | 1
    binary = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)
    # Paper noise is light grey: require the pixel to be clearly dark in absolute terms too.
    return (binary > 0) & (gray < 200)


def ruling_masks(ink: np.ndarray, dpi: float) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal, vertical) rule masks by morphological opening with long thin kernels.

    The kernel (~20 pt) is longer than two characters, so single strokes go; what survives and is
    still text (the aligned 一-strokes of a run of characters, e.g. 结转 in
    pingtan-2021-form-scan.pdf) is dropped by ``_drop_text_strokes``: a rule has paper on both
    sides, a stroke has the rest of its characters.
    """
    m = ink.astype(np.uint8)
    length = px(dpi, 20)
    hm = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))
    # Vertical rules of one table row are only ~20 pt long between breaks; 12 pt keeps them
    # (a one-row table, pingtan-2021-form-scan.pdf page 3) and is still taller than a digit.
    vm = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, px(dpi, 12))))
    return _drop_text_strokes(hm, ink, dpi, "h"), _drop_text_strokes(vm, ink, dpi, "v")


def rule_evidence(ink: np.ndarray, dpi: float) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal, vertical) masks of short thin straight ink: where a rule *might* be.

    Only used to judge whether a lattice boundary is printed at one cell's side (coverage in
    ``grid_geometry.lattice_from_rules``), never to erase: in a scanned row ~20 pt high the
    pieces of a broken vertical rule are shorter than the ruling kernel, so the long masks miss
    them (pingtan-2021-form-scan.pdf merged 0 | 0 into ``01.0``). Thin = the ink run across the
    rule direction is under ~2.5 pt, which drops text blobs and strokes lying across.
    """
    m = ink.astype(np.uint8)
    thick = px(dpi, 2.5)
    seg = px(dpi, 4)
    across_v = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (thick, 1)))
    v = cv2.morphologyEx(m & (1 - across_v), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, seg)))
    across_h = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, thick)))
    h = cv2.morphologyEx(m & (1 - across_h), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (seg, 1)))
    return h > 0, v > 0


def _drop_text_strokes(mask: np.ndarray, ink: np.ndarray, dpi: float, axis: str) -> np.ndarray:
    """Remove mask components whose flanks (a few pt either side, along their length) are inked
    on both sides like the inside of a text line."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return mask > 0
    integral = cv2.integral(ink.astype(np.uint8))
    H, W = ink.shape
    gap, depth = px(dpi, 1.5), px(dpi, 4)

    def density(x0: int, y0: int, x1: int, y1: int) -> float:
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if x1 <= x0 or y1 <= y0:
            return 0.0
        s = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        return float(s) / ((x1 - x0) * (y1 - y0))

    keep = np.zeros(n, bool)
    for i in range(1, n):
        x, y, w, h, _ = stats[i]
        # The flanks stop short of the ends, where crossing rules would count as ink
        # (a one-row table's vertical rules are all "ends": pingtan-2021-form-scan.pdf page 3).
        if axis == "h":
            xa, xb = x + depth, x + w - depth
            if xb - xa < depth:
                keep[i] = True
                continue
            a = density(xa, y - gap - depth, xb, y - gap)
            b = density(xa, y + h + gap, xb, y + h + gap + depth)
        else:
            ya, yb = y + depth, y + h - depth
            if yb - ya < depth:
                keep[i] = True
                continue
            a = density(x - gap - depth, ya, x - gap, yb)
            b = density(x + w + gap, ya, x + w + gap + depth, yb)
        keep[i] = min(a, b) < 0.12
    return keep[labels]


def estimate_skew(ink: np.ndarray, dpi: float, max_deg: float = 5.0) -> float:
    """Page skew in degrees (positive = content rotated clockwise... i.e. the angle to rotate back
    with ``rotate``), from long near-horizontal strokes: table rules and text-line bottoms.

    Uses a horizontal projection-profile search on a reduced image: the angle whose rotation
    makes row sums most peaked (sum of squared differences) wins. ±max_deg in 0.1° steps, coarse
    to fine; ~0.1 s on an A4 page at 200 dpi.
    """
    small_scale = 0.25
    small = cv2.resize(ink.astype(np.uint8) * 255, None, fx=small_scale, fy=small_scale,
                       interpolation=cv2.INTER_AREA)
    if small.sum() == 0:
        return 0.0
    h, w = small.shape
    centre = (w / 2, h / 2)

    def score(angle: float) -> float:
        mtx = cv2.getRotationMatrix2D(centre, angle, 1.0)
        rot = cv2.warpAffine(small, mtx, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        prof = rot.sum(axis=1, dtype=np.float64)
        return float(np.square(np.diff(prof)).sum())

    best = max(np.arange(-max_deg, max_deg + 1e-6, 0.5), key=score)
    fine = max(np.arange(best - 0.5, best + 0.5 + 1e-6, 0.1), key=score)
    return float(round(fine, 2))


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """Rotate by ``angle`` degrees (counter-clockwise, OpenCV convention) keeping the size, white
    border."""
    if abs(angle) < 0.05:
        return image
    h, w = image.shape[:2]
    mtx = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    border = 255 if image.ndim == 2 else (255, 255, 255)
    return cv2.warpAffine(image, mtx, (w, h), flags=cv2.INTER_LINEAR, borderValue=border)


def rotate_quarter(image: np.ndarray, quarters: int) -> np.ndarray:
    """Rotate by quarters × 90° counter-clockwise."""
    return np.ascontiguousarray(np.rot90(image, quarters % 4))


def text_runs_vertical(ink: np.ndarray) -> bool:
    """True when text lines run vertically, i.e. the page is turned by 90°.

    Horizontal text leaves many fully empty pixel rows (the gaps between lines) and few empty
    columns; a page turned 90° shows the opposite."""
    ys, xs = np.nonzero(ink[::2, ::2])
    if len(ys) < 500:
        return False
    sub = ink[::2, ::2][ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    empty_rows = float((sub.sum(axis=1) == 0).mean())
    empty_cols = float((sub.sum(axis=0) == 0).mean())
    return empty_cols > 2 * empty_rows + 0.05


def table_regions(h_mask: np.ndarray, v_mask: np.ndarray, dpi: float) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x0, y0, x1, y1) of ruled tables: connected groups of rules holding both
    horizontal and vertical ink. Rules are dilated by ~10 pt first so broken rules stay one table;
    two tables are separated by at least a heading line, which is wider than that."""
    both = (h_mask | v_mask).astype(np.uint8)
    grow = px(dpi, 10)   # bridges the 20-60 px gaps of broken scanned rules; tables are further apart
    joined = cv2.dilate(both, cv2.getStructuringElement(cv2.MORPH_RECT, (grow, grow)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    out = []
    min_w, min_h = px(dpi, 100), px(dpi, 12)
    for i in range(1, n):
        x, y, w, h, _area = stats[i]
        if w < min_w or h < min_h:
            continue
        x1, y1 = x + w - 1, y + h - 1
        hs = h_mask[y:y1 + 1, x:x1 + 1].sum()
        vs = v_mask[y:y1 + 1, x:x1 + 1].sum()
        if hs < 2 * min_w or vs < 2 * min_h:
            continue
        # Undo the dilation margin.
        out.append((int(x + grow // 2), int(y + grow // 2), int(x1 - grow // 2), int(y1 - grow // 2)))
    # Pieces of one table whose rules broke apart at the same place (every rule of a short
    # table can have a gap in one column: luolong-minzheng-2020-form-scan.pdf's appeal table
    # came out as two tables) are joined when they sit side by side or touch.
    near = px(dpi, 8)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                y_overlap = min(a[3], b[3]) - max(a[1], b[1])
                x_overlap = min(a[2], b[2]) - max(a[0], b[0])
                side = y_overlap > 0.5 * min(a[3] - a[1], b[3] - b[1]) and x_overlap > -near
                stacked = x_overlap > 0.8 * min(a[2] - a[0], b[2] - b[0]) and y_overlap > -near // 2
                if side or stacked:
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    # A group of rules inside another table's box (its rules broke apart) belongs to that table.
    out = [b for b in out if not any(o != b and o[0] <= b[0] + 4 and o[1] <= b[1] + 4 and o[2] >= b[2] - 4
                                     and o[3] >= b[3] - 4 for o in out)]
    out.sort(key=lambda b: (b[1], b[0]))
    return out


def erase(gray: np.ndarray, mask: np.ndarray, dpi: float) -> np.ndarray:
    """Paint ``mask`` (grown by ~1 pt) white: rules out of the crops the recogniser sees."""
    grown = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)),
                       iterations=max(1, px(dpi, 1)))
    out = gray.copy()
    out[grown > 0] = 255
    return out


