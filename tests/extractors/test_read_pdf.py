"""extractors/read_pdf.py on the devset's born-digital PDFs and on generated bad PDFs."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from models.errors import CORRUPT, EMPTY, ENCRYPTED, TOO_LARGE, InputError
from models.options import ExtractOptions


def _devset() -> Path:
    env = os.environ.get("NIANBAO_DEVSET")
    d = Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "devset"
    if not d.is_dir():
        pytest.skip(f"devset not found at {d} (set NIANBAO_DEVSET to run the devset tests)")
    return d


def _apply_rows(doc) -> list[list[str]]:
    """Value cells of every table-二 data row: the trailing 7 cells after a label mentioning a
    row keyword."""
    rows = []
    for line in doc.lines:
        texts = [c.text for c in line.cells]
        if len(texts) >= 8 and all(re.fullmatch(r"-?[\d.]*", t) for t in texts[-7:]) and \
                not all(re.fullmatch(r"-?[\d.]*", t) for t in texts):
            rows.append(texts[-7:])
    return rows


def test_read_pdf_organ_pdf_table_rows_match_labels():
    from extractors.read_pdf import read_pdf
    d = _devset()
    doc = read_pdf((d / "hongze-2023.pdf").read_bytes(), ExtractOptions())
    labels = json.loads((d / "labels" / "hongze-2023.json").read_text())["fields"]
    rows = _apply_rows(doc)
    assert len(rows) == 23          # hongze prints (六) as one row: 2021 form, 23 data rows
    new = [labels[f"apply.new.{c}"] for c in
           ("natural_person", "commercial", "research", "nonprofit", "legal_services", "other_org", "total")]
    assert [int(x) for x in rows[0]] == new
    # The vertical group label is one cell on the (一)予以公开 row, not one character per line.
    assert any(c.text == "三、本年度办理结果" for l in doc.lines for c in l.cells)
    # Header split over lines (商业企/业) is joined.
    assert any(c.text == "商业企业" for l in doc.lines for c in l.cells)
    # Every cell carries page and a PDF-point bbox inside an A4 page.
    cells = [c for l in doc.lines for c in l.cells]
    assert all(c.page and c.bbox and 0 <= c.bbox[0] < c.bbox[2] <= 600 for c in cells)


def test_read_pdf_blank_cells_keep_their_place():
    """The typeset form prints zeros blank; a row keeps 7 value positions."""
    from extractors.read_pdf import read_pdf
    d = _devset()
    doc = read_pdf((d / "shanghai-bgt-2019-form.pdf").read_bytes(), ExtractOptions())
    rows = _apply_rows(doc)
    assert len(rows) == 23
    assert all(len(r) == 7 for r in rows)
    assert sum(1 for r in rows for t in r if t == "") > 100


def test_read_pdf_kangxi_and_radical_supplement_normalised():
    from extractors.grid_geometry import normalize_text
    assert normalize_text("⼀、本年新收") == "一、本年新收"
    assert normalize_text("⼈⺠政府") == "人民政府"
    assert normalize_text("（一）") == "(一)"


def _minimal_pdf(n_pages: int = 1, encrypt: bool = False) -> bytes:
    """A tiny valid PDF built by hand (pages without content); ``encrypt`` adds a standard
    security handler whose user password is not empty, so readers must refuse it."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + i} 0 R" for i in range(n_pages))
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for _ in range(n_pages):
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>")
    if encrypt:
        objs.append(b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 +
                    b"> /P -44 >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    trailer = f"<< /Size {len(objs) + 1} /Root 1 0 R"
    if encrypt:
        trailer += f" /Encrypt {len(objs)} 0 R /ID [<{'ab' * 16}> <{'ab' * 16}>]"
    out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


@pytest.mark.parametrize("data, code", [
    (b"", EMPTY),
    (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog", CORRUPT),
    (_minimal_pdf(encrypt=True), ENCRYPTED),
    (_minimal_pdf(500), TOO_LARGE),
])
def test_read_pdf_bad_input_is_an_input_error_fast(data, code):
    from extractors.read_pdf import read_pdf
    started = time.perf_counter()
    with pytest.raises(InputError) as e:
        read_pdf(data, ExtractOptions())
    assert e.value.code == code
    assert e.value.message.endswith(".")
    assert time.perf_counter() - started < 5


def test_read_pdf_truncated_devset_file_fails_cleanly():
    from extractors.pipeline import extract_bytes
    d = _devset()
    data = (d / "hongze-2023.pdf").read_bytes()
    result = extract_bytes(data[: len(data) // 2], "half.pdf")
    assert result.status == "failed"
    assert result.error


def test_read_pdf_page_functions_agree_with_whole_read():
    from extractors.read_pdf import assemble_pages, pdf_page_count, read_pdf, read_pdf_page, render_page_png
    d = _devset()
    data = (d / "pingtan-2019-form.pdf").read_bytes()
    n = pdf_page_count(data)
    pages = [read_pdf_page(data, p, ExtractOptions()) for p in range(n, 0, -1)]
    joined = assemble_pages(pages, n)
    whole = read_pdf(data, ExtractOptions())
    assert [l.text for l in joined.lines] == [l.text for l in whole.lines]
    png = render_page_png(data, 1, 72)
    assert png.startswith(b"\x89PNG")
