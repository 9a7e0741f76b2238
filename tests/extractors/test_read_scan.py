"""extractors/read_scan.py: the real PP-OCRv4 model on devset scan pages (no mocked engine)."""
from __future__ import annotations

import io
import json
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from models.errors import TOO_LARGE, UNSUPPORTED, InputError
from models.options import ExtractOptions

APPLY_COLUMNS = ("natural_person", "commercial", "research", "nonprofit", "legal_services", "other_org", "total")


def _devset() -> Path:
    env = os.environ.get("NIANBAO_DEVSET")
    d = Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "devset"
    if not d.is_dir():
        pytest.skip(f"devset not found at {d} (set NIANBAO_DEVSET to run the devset tests)")
    return d


def _page_image(pdf: Path, page: int, dpi: int = 200) -> np.ndarray:
    import pypdfium2 as pdfium
    doc = pdfium.PdfDocument(str(pdf))
    try:
        return doc[page - 1].render(scale=dpi / 72).to_numpy()[:, :, :3][:, :, ::-1].copy()
    finally:
        doc.close()


def _numeric(t: str) -> bool:
    return t.replace(".", "", 1).isdigit()


@pytest.mark.slow
def test_read_scan_table_page_reads_every_cell():
    """pingtan-2021-form-scan.pdf page 2 (broken faint rules, noise, 1° skew): every value row of
    table 三 comes out with 7 numbers equal to the labels, lone 0s included."""
    from extractors.read_scan import ocr_page_image
    d = _devset()
    labels = json.loads((d / "labels" / "pingtan-2021-form-scan.json").read_text())["fields"]
    lines, text, _ = ocr_page_image(_page_image(d / "pingtan-2021-form-scan.pdf", 2), 2, ExtractOptions())
    rows = {}
    keys = {"予以公开": "granted", "国家秘密": "denied.state_secret", "保护第三方": "denied.third_party",
            "三类内部": "denied.internal_affairs", "不掌握相关": "unable.not_held", "重复申请": "not_processed.duplicate",
            "(七)总计": "total", "结转下年度": "carried_out"}
    for line in lines:
        label = "".join(c.text for c in line.cells[:-7])
        for kw, key in keys.items():
            if kw in label:
                rows[key] = [c.text for c in line.cells[-7:]]
    assert set(rows) == set(keys.values())
    for key, got in rows.items():
        assert got == [str(labels[f"apply.{key}.{c}"]) for c in APPLY_COLUMNS], key
    cells = [c for l in lines for c in l.cells if c.text]
    assert all(0.0 <= c.score <= 1.0 and c.bbox for c in cells)


@pytest.mark.slow
def test_read_scan_single_row_appeal_table_and_orientation():
    """Page 3 holds only the 15-number appeal row: found as one table row, page not flipped."""
    from extractors.read_scan import ocr_page_image
    d = _devset()
    labels = json.loads((d / "labels" / "pingtan-2021-form-scan.json").read_text())["fields"]
    lines, _, warnings = ocr_page_image(_page_image(d / "pingtan-2021-form-scan.pdf", 3), 3, ExtractOptions())
    assert not warnings
    row = next(l for l in lines if len(l.cells) == 15)
    want = [labels[f"appeal.{g}.{r}"] for g in ("review", "suit_direct", "suit_after_review")
            for r in ("upheld", "corrected", "other", "pending", "total")]
    assert [int(c.text) for c in row.cells] == want


@pytest.mark.slow
def test_read_scan_upside_down_page_is_turned():
    from extractors.read_scan import ocr_page_image
    d = _devset()
    img = _page_image(d / "pingtan-2021-form-scan.pdf", 1)[::-1, ::-1].copy()
    lines, text, warnings = ocr_page_image(img, 1, ExtractOptions())
    assert any("180" in w for w in warnings)
    assert "政府信息公开" in text


@pytest.mark.slow
def test_read_scan_image_only_pdf_goes_through_ocr():
    from extractors.read_pdf import read_pdf
    d = _devset()
    doc = read_pdf((d / "luolong-minzheng-2020-form-scan.pdf").read_bytes(), ExtractOptions())
    assert doc.format == "scan"
    assert "统计" in doc.text or "政府信息公开" in doc.text
    assert all(c.bbox[2] <= 600 for l in doc.lines for c in l.cells)   # PDF points, not pixels


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring width×height with a tiny (truncated) IDAT: the size must be refused from
    the header, before any decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def test_read_scan_huge_png_refused_from_header():
    from extractors.read_scan import read_image
    started = time.perf_counter()
    with pytest.raises(InputError) as e:
        read_image(_png_header_only(20_000, 20_000), ExtractOptions())
    assert e.value.code == TOO_LARGE
    assert time.perf_counter() - started < 2


def test_read_scan_garbage_image_bytes():
    from extractors.read_scan import read_image
    with pytest.raises(InputError) as e:
        read_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 50, ExtractOptions())
    assert e.value.code == UNSUPPORTED


@pytest.mark.slow
def test_read_scan_photo_that_is_not_a_report_reads_without_tables():
    """A noise 'photo' yields few or no lines and no table rows; the shared stages say no tables."""
    from PIL import Image
    from extractors.pipeline import extract_bytes
    rng = np.random.default_rng(0)
    img = (rng.random((900, 1200, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG")
    result = extract_bytes(buf.getvalue(), "photo.jpg")
    assert result.status in ("failed", "needs_review")
