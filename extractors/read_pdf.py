"""PDF reader: text-layer pages through pdfplumber's ruled-table finder, image-only pages through OCR.

Contract (``models/cells.py``): one ``Line`` per printed table row, cells left to right, a blank
grid cell kept as ``Cell("")``; a merged cell appears once, on the row where it starts (the
vertical 三、本年度办理结果 sits on the （一）予以公开 row, as an HTML ``rowspan`` would); a cell's
physical lines are joined into one text (``商业企/业`` → ``商业企业``). Text outside tables becomes one
``Line`` per printed line (split into cells at wide gaps, which keeps un-ruled tables usable).

Coordinates: every ``bbox`` is ``(x0, top, x1, bottom)`` in PDF points with the origin at the
page's top-left corner, for text-layer and OCR pages alike (OCR pixels are scaled by 72/dpi), so
a reviewer crop is ``render_page_png(data, page, dpi)`` scaled by dpi/72. ``score`` is NaN on
text-layer pages and the OCR confidence on OCR pages.

Why pdfplumber's table finder and not camelot: on the devset both find every ruled table with all
numbers right (notes/pdf-and-ocr.md), pdfplumber in ~0.05 s/page against ~1 s for camelot lattice,
and it reports merged cells as ``None`` positions, which is what places a spanning label once.
Camelot stream is not used: it split wrapped labels into extra rows and lost 70 numbers there;
un-ruled text falls back to gap-split lines instead.

Per-page entry points for the worker's fan-out: ``pdf_page_count``, ``read_pdf_page``,
``assemble_pages``, ``render_page_png``. ``read_pdf`` is the same thing in one process.
"""
from __future__ import annotations

import io
import logging
import re
import time
import zlib
from dataclasses import dataclass, field

from models.cells import Cell, Line, ReadDocument
from models.errors import CORRUPT, EMPTY, ENCRYPTED, TIMEOUT, TOO_LARGE, InputError
from models.options import ExtractOptions

from . import deadline
from .grid_geometry import TextBox, join_cell_lines, join_title_lines, normalize_text, rows_from_boxes, split_row_by_gaps

log = logging.getLogger(__name__)

# pdfminer logs "Could not get FontBBox from font descriptor" once per Type 3 font (harmless,
# notes/pdf-and-ocr.md); keep batch logs readable.
for _name in ("pdfminer", "pdfminer.pdffont", "pdfminer.pdfpage"):
    logging.getLogger(_name).setLevel(logging.ERROR)

# A page whose text layer has fewer printable characters than this is read by OCR (scans carry
# none; a scanned page with an invisible page number still has < 10).
MIN_TEXT_LAYER_CHARS = 10


@dataclass(slots=True)
class PageRead:
    """One page's share of a ``ReadDocument`` (what a fan-out task returns)."""

    page: int
    lines: list[Line]
    text: str
    ocr: bool = False
    warnings: list[str] = field(default_factory=list)


# --- opening and validation -----------------------------------------------------------------


def _open_pdfium(data: bytes):
    import pypdfium2 as pdfium
    if not data:
        raise InputError(EMPTY, "The PDF is empty (0 bytes); upload the report file itself.")
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        if "password" in str(e).lower():
            raise InputError(ENCRYPTED, "The PDF is password-protected; save an unprotected copy "
                             "(print to PDF) and upload that.") from None
        raise InputError(CORRUPT, "The PDF is damaged or truncated and cannot be opened; "
                         "download or export it again.") from None


_STREAM = re.compile(rb"stream\r?\n")


def check_streams(data: bytes, options: ExtractOptions) -> None:
    """Refuse a PDF with a Flate stream that inflates beyond ``Limits.max_pdf_stream_bytes``
    (a decompression bomb: pdfium and pdfminer both inflate a whole stream into memory).

    Every ``stream`` keyword followed by a zlib header is inflated incrementally, 1 MiB of output
    at a time and discarded, so the check itself runs in constant memory; it costs one
    decompression of the file's Flate data (~0.3 s per 100 MB inflated).
    """
    cap = options.limits.max_pdf_stream_bytes
    view = memoryview(data)
    for m in _STREAM.finditer(data):
        start = m.end()
        head = data[start:start + 2]
        if len(head) < 2 or head[0] & 0x0F != 8 or (head[0] * 256 + head[1]) % 31:
            continue                      # not zlib (DCT/JPX images, raw text, a false match)
        d = zlib.decompressobj()
        out = 0
        pos = start
        try:
            while not d.eof and pos < len(data):
                chunk = view[pos:pos + 65536]
                pos += len(chunk)
                buf = d.decompress(chunk, 2**20)
                out += len(buf)
                while d.unconsumed_tail and out <= cap:
                    buf = d.decompress(d.unconsumed_tail, 2**20)
                    out += len(buf)
                if out > cap:
                    raise InputError(TOO_LARGE, f"A stream in the PDF inflates to more than {cap // 2**20} MiB "
                                     "(a decompression bomb?); export the PDF again.")
        except zlib.error:
            continue                      # damaged stream: the parsers decide what to do with it


def _check_page_count(n: int, options: ExtractOptions) -> None:
    if n <= 0:
        raise InputError(CORRUPT, "The PDF has no pages; download or export it again.")
    if n > options.limits.max_pages:
        raise InputError(TOO_LARGE, f"The PDF has {n} pages, over the {options.limits.max_pages}-page "
                         "limit for one report; split out the report's pages and upload those.")


def pdf_page_count(data: bytes, options: ExtractOptions = ExtractOptions()) -> int:
    """Number of pages; raises ``InputError`` for empty, encrypted or corrupt files and for
    decompression bombs (``check_streams``: the worker's fan-out gate, so per-page reads skip it)."""
    doc = _open_pdfium(data)
    try:
        check_streams(data, options)
        return len(doc)
    finally:
        doc.close()


def render_page_png(data: bytes, page_no: int, dpi: int = 150) -> bytes:
    """PNG of one page (1-based) at ``dpi``, for reviewer crops (pypdfium2, ~0.05 s at 200 dpi)."""
    doc = _open_pdfium(data)
    try:
        if not 1 <= page_no <= len(doc):
            raise InputError(CORRUPT, f"The PDF has no page {page_no}.")
        img = doc[page_no - 1].render(scale=dpi / 72).to_pil()
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()
    finally:
        doc.close()


# --- text layer -------------------------------------------------------------------------------

_GARBAGE = re.compile(r"[\ue000-\uf8ff\ufffd]|\(cid:\d+\)")


def text_layer_usable(text: str) -> bool:
    """Enough printable characters, and not mostly private-use / (cid:n) glyphs (a broken font
    map reads as garbage; OCR is then the only way to the numbers)."""
    printable = [c for c in text if not c.isspace()]
    if len(printable) < MIN_TEXT_LAYER_CHARS:
        return False
    return len(_GARBAGE.findall(text)) < 0.3 * len(printable)


def _table_is_grid(table) -> bool:
    """A real table has a row with at least two cells; pdfplumber also 'finds' one-column frames
    around prose (hongze-2023.pdf page 1: the body text sits in ruled boxes)."""
    return any(sum(c is not None for c in row.cells) >= 2 for row in table.rows)


def _cells_of_table(table, page_no: int) -> list[tuple[float, Line]]:
    """(top, Line) per table row: every non-None cell (None = covered by a merged cell)."""
    out = []
    for row, texts in zip(table.rows, table.extract()):
        cells = []
        for bbox, text in zip(row.cells, texts):
            if bbox is None:
                continue
            cells.append(Cell(join_cell_lines((text or "").split("\n")), page_no,
                              tuple(round(float(v), 2) for v in bbox)))
        if any(c.text for c in cells):   # a row of only blank cells is a sliver, not a printed row
            out.append((float(row.bbox[1]), Line(cells, page_no)))
    return out


def _inside(obj: dict, boxes: list[tuple[float, float, float, float]]) -> bool:
    cx = (obj["x0"] + obj["x1"]) / 2
    cy = (obj["top"] + obj["bottom"]) / 2
    return any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes)


def lines_from_text_layer(page, page_no: int) -> list[Line]:
    """All Lines of one pdfplumber page in reading order (top to bottom)."""
    tables = [t for t in page.find_tables() if _table_is_grid(t)]
    rows: list[tuple[float, Line]] = []
    for t in tables:
        rows.extend(_cells_of_table(t, page_no))
    boxes = [tuple(map(float, t.bbox)) for t in tables]
    rest = page.filter(lambda o: o.get("object_type") != "char" or not _inside(o, boxes)) if boxes else page
    words = rest.extract_words(x_tolerance=2, y_tolerance=2, keep_blank_chars=False)
    tboxes = [TextBox(normalize_text(w["text"]), (float(w["x0"]), float(w["top"]), float(w["x1"]),
                                                  float(w["bottom"]))) for w in words]
    for row in rows_from_boxes(tboxes):
        height = sorted(b.bbox[3] - b.bbox[1] for b in row)[len(row) // 2]
        # Justified CJK prose spaces characters by < 1 em; a table column gap is several em.
        cells = split_row_by_gaps(row, gap=2.5 * height)
        rows.append((min(b.bbox[1] for b in row),
                     Line([Cell(join_cell_lines([c.text]), page_no, tuple(round(v, 2) for v in c.bbox))
                           for c in cells], page_no)))
    rows.sort(key=lambda r: r[0])
    lines = [line for _, line in rows]
    return join_title_lines(lines) if page_no == 1 else lines


def _line_text(line: Line) -> str:
    return " ".join(c.text for c in line.cells if c.text)


# --- pages --------------------------------------------------------------------------------------


def _read_page(pdfium_doc, plumber_doc, page_no: int, options: ExtractOptions) -> PageRead:
    pdf_page = pdfium_doc[page_no - 1]
    textpage = pdf_page.get_textpage()
    try:
        raw = textpage.get_text_range()
    finally:
        textpage.close()
    if text_layer_usable(raw):
        lines = lines_from_text_layer(plumber_doc.pages[page_no - 1], page_no)
        return PageRead(page_no, lines, "\n".join(_line_text(l) for l in lines))
    # Image-only page: OCR this page only (never a page that has text).
    from .read_scan import ocr_page_image
    dpi = options.render_dpi
    image = pdf_page.render(scale=dpi / 72, grayscale=False).to_numpy()
    if image.shape[0] * image.shape[1] > options.limits.max_image_pixels:
        raise InputError(TOO_LARGE, f"Page {page_no} renders to {image.shape[1]}×{image.shape[0]} px, over "
                         "the pixel limit; lower the render dpi or split the page.")
    lines, text, warnings = ocr_page_image(image[:, :, :3][:, :, ::-1].copy(), page_no, options,
                                           scale=72.0 / dpi)
    return PageRead(page_no, lines, text, ocr=True, warnings=warnings)


class _Opened:
    """Both parsers over one byte string: pdfium for page checks and rendering, pdfplumber
    (pdfminer) for words and ruled tables."""

    def __init__(self, data: bytes, options: ExtractOptions, streams_checked: bool = False):
        self.pdfium = _open_pdfium(data)
        try:
            _check_page_count(len(self.pdfium), options)
            if not streams_checked:
                check_streams(data, options)
        except InputError:
            self.pdfium.close()
            raise
        self._data = data
        self._plumber = None

    @property
    def plumber(self):
        if self._plumber is None:
            import pdfplumber
            try:
                self._plumber = pdfplumber.open(io.BytesIO(self._data))
                _ = self._plumber.pages  # parse the page tree now, not halfway through a page
            except Exception as e:  # pdfminer raises many types for damaged files (PDFSyntaxError, EOF, ...)
                if "encrypt" in str(e).lower() or "password" in str(e).lower():
                    raise InputError(ENCRYPTED, "The PDF is encrypted in a way that cannot be read; save an "
                                     "unprotected copy (print to PDF) and upload that.") from None
                raise InputError(CORRUPT, "The PDF's text layer is damaged and cannot be read; "
                                 "download or export it again.") from None
        return self._plumber

    def close(self) -> None:
        if self._plumber is not None:
            self._plumber.close()
        self.pdfium.close()


def read_pdf_page(data: bytes, page_no: int, options: ExtractOptions = ExtractOptions()) -> PageRead:
    """Read one page (1-based) of ``data``: its Lines and text. Raises ``InputError`` on bad input.
    Streams are not inflated-checked here: ``pdf_page_count`` did that before the fan-out."""
    opened = _Opened(data, options, streams_checked=True)
    try:
        if not 1 <= page_no <= len(opened.pdfium):
            raise InputError(CORRUPT, f"The PDF has no page {page_no}.")
        return _read_page(opened.pdfium, opened.plumber, page_no, options)
    finally:
        opened.close()


def assemble_pages(pages: list[PageRead], page_count: int | None = None) -> ReadDocument:
    """Join page reads (any order) into one ``ReadDocument``; format ``scan`` when every page was OCR'd."""
    pages = sorted(pages, key=lambda p: p.page)
    lines = [l for p in pages for l in p.lines]
    warnings = [w for p in pages for w in p.warnings]
    fmt = "scan" if pages and all(p.ocr for p in pages) else "pdf"
    return ReadDocument(lines=lines, text="\n".join(p.text for p in pages), format=fmt,
                        pages=page_count or len(pages), warnings=warnings)


def read_pdf(data: bytes, options: ExtractOptions = ExtractOptions()) -> ReadDocument:
    """Read every page; raises ``InputError`` for empty, encrypted, corrupt or over-limit PDFs."""
    started = time.perf_counter()
    opened = _Opened(data, options)
    try:
        n = len(opened.pdfium)
        pages = []
        for page_no in range(1, n + 1):
            if time.perf_counter() - started > options.limits.max_seconds_per_document:
                raise InputError(TIMEOUT, f"Reading stopped after {options.limits.max_seconds_per_document:.0f} s "
                                 f"at page {page_no} of {n}; split the PDF and upload the report's pages.")
            deadline.check(f"PDF page {page_no} of {n}")
            pages.append(_read_page(opened.pdfium, opened.plumber, page_no, options))
        return assemble_pages(pages, n)
    finally:
        opened.close()
