"""extractors/preprocess.py and the lattice of grid_geometry.py on synthetic pages."""
from __future__ import annotations

import cv2
import numpy as np

from extractors import preprocess as pp
from extractors.grid_geometry import clean_number_text, lattice_from_rules

DPI = 200


def _grid_page(rows: int = 6, cols: int = 5, broken: bool = False) -> np.ndarray:
    img = np.full((1200, 1000), 255, np.uint8)
    x0, y0, w, h = 100, 200, 150, 60
    for r in range(rows + 1):
        cv2.line(img, (x0, y0 + r * h), (x0 + cols * w, y0 + r * h), 0, 2)
    for c in range(cols + 1):
        cv2.line(img, (x0 + c * w, y0), (x0 + c * w, y0 + rows * h), 0, 2)
    for r in range(rows):
        for c in range(1, cols):
            cv2.putText(img, "0", (x0 + c * w + 65, y0 + r * h + 42), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
    if broken:     # gaps like the devset scans' faint rules, at different places on each rule
        for r in range(rows + 1):
            y = y0 + r * h
            for x in range(x0 + 40 + 20 * r, x0 + cols * w - 30, 90):
                img[y - 2:y + 3, x:x + 25] = 255
        for c in range(cols + 1):
            x = x0 + c * w
            for y in range(y0 + 15 + 10 * c, y0 + rows * h - 20, 60):
                img[y:y + 14, x - 2:x + 3] = 255
    return img


def test_preprocess_deskew_recovers_angle():
    page = _grid_page()
    tilted = pp.rotate(page, 3.0)
    angle = pp.estimate_skew(pp.ink_mask(tilted, DPI), DPI)
    assert abs(angle + 3.0) < 0.3
    assert abs(pp.estimate_skew(pp.ink_mask(page, DPI), DPI)) < 0.3


def test_preprocess_red_stamp_removed_black_kept():
    bgr = np.full((100, 100, 3), 255, np.uint8)
    bgr[10:40, 10:40] = (30, 30, 220)     # red (BGR)
    bgr[60:70, 60:90] = (20, 20, 20)      # black text
    out = pp.remove_red_stamp(bgr)
    assert (out[10:40, 10:40] == 255).all()
    assert (out[60:70, 60:90] == 20).all()


def test_preprocess_ruling_masks_keep_rules_drop_digits():
    page = _grid_page()
    h, v = pp.ruling_masks(pp.ink_mask(page, DPI), DPI)
    assert h[200, 120:800].mean() > 0.9 or h[199:202, 120:800].any(axis=0).mean() > 0.9
    assert not (h | v)[230:250, 315:340].any()      # the "0" of the first value cell


def test_preprocess_lattice_from_broken_rules_keeps_every_cell():
    """Rules with 30-px gaps still give 6 × 5 single cells (no merged neighbours)."""
    page = _grid_page(broken=True)
    ink = pp.ink_mask(page, DPI)
    h, v = pp.ruling_masks(ink, DPI)
    regions = pp.table_regions(h, v, DPI)
    assert len(regions) == 1
    lat = lattice_from_rules(h, v, regions[0], min_rule_px=pp.px(DPI, 20), min_rule_px_v=pp.px(DPI, 4),
                             tol_px=pp.px(DPI, 3), evidence=pp.rule_evidence(ink, DPI), text_ink=ink & ~(h | v),
                             min_gap_px=pp.px(DPI, 6))
    assert lat is not None
    assert len(lat.cells) == 30
    assert all(c.r0 == c.r1 and c.c0 == c.c1 for c in lat.cells)


def test_preprocess_quarter_turn_detected():
    page = _grid_page()
    for r in range(3):
        cv2.putText(page, "TEXT LINE " * 4, (100, 80 + r * 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2)
    ink = pp.ink_mask(page, DPI)
    assert not pp.text_runs_vertical(ink)
    assert pp.text_runs_vertical(pp.rotate_quarter(ink, 1))


def test_grid_geometry_number_confusions():
    assert clean_number_text("o") == ("0", ("o",))
    assert clean_number_text("1 2") == ("12", ("1 2",))
    assert clean_number_text("１９") == ("19", ())
    assert clean_number_text("无")[0] == "无"
    assert clean_number_text("251000元")[0] == "251000元"
