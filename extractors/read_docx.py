"""DOCX reader: python-docx paragraphs and tables in body order.

- A paragraph is one ``Line`` with one cell (title, 统计期限…, headings), and goes into ``text``.
- A table row is one ``Line``: one cell per *grid* cell that starts in that row. Word merges are
  read from the XML: a horizontal merge (``w:gridSpan``) is one cell, not repeated into the
  value positions it covers; a vertical merge (``w:vMerge`` continue) is left out of the rows it
  continues into, as an HTML ``rowspan`` would be — so a value row keeps exactly its printed
  cells, blanks included (``Cell("")``).
- A cell's paragraphs are joined like wrapped PDF lines (``grid_geometry.join_cell_lines``).

No geometry: ``page`` and ``bbox`` are None (Word has no fixed pages), ``score`` NaN.
"""
from __future__ import annotations

import io
import zipfile

from models.cells import Cell, Line, ReadDocument
from models.errors import CORRUPT, EMPTY, ENCRYPTED, TOO_LARGE, InputError
from models.options import ExtractOptions

from .grid_geometry import join_cell_lines, normalize_text

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _check_zip(data: bytes, options: ExtractOptions) -> None:
    """A DOCX is a zip: refuse bombs before python-docx inflates anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            total = 0
            for info in z.infolist():
                total += info.file_size
                if info.compress_size and info.file_size / info.compress_size > options.limits.max_zip_ratio:
                    raise InputError(TOO_LARGE, "The DOCX expands to far more than its size (a zip bomb?); "
                                     "save it again from Word.")
            if total > options.limits.max_zip_total_bytes:
                raise InputError(TOO_LARGE, "The DOCX is too large once unpacked; split the document.")
            if "word/document.xml" not in z.namelist():
                if "EncryptedPackage" in z.namelist():
                    raise InputError(ENCRYPTED, "The DOCX is password-protected; save an unprotected copy.")
                raise InputError(CORRUPT, "The file is a zip but not a Word document; upload the .docx report.")
    except zipfile.BadZipFile:
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":   # OLE: encrypted DOCX or old .doc
            raise InputError(ENCRYPTED, "The Word file is password-protected or in the old .doc format; "
                             "save it as an unprotected .docx.") from None
        raise InputError(CORRUPT, "The DOCX is damaged or truncated; save it again from Word.") from None


def _cell_text(tc) -> str:
    parts = []
    for p in tc.iter(f"{_W}p"):
        parts.append("".join(t.text or "" for t in p.iter(f"{_W}t")))
    return join_cell_lines(parts)


def _table_lines(tbl) -> list[Line]:
    lines = []
    for tr in tbl.iter(f"{_W}tr"):
        if tr.getparent() is not tbl:          # rows of a nested table are read with that table
            continue
        cells = []
        for tc in tr.findall(f"{_W}tc"):
            tcpr = tc.find(f"{_W}tcPr")
            vmerge = tcpr.find(f"{_W}vMerge") if tcpr is not None else None
            if vmerge is not None and vmerge.get(f"{_W}val", "continue") == "continue":
                continue                       # continues the cell above: printed once, up there
            cells.append(Cell(_cell_text(tc)))
        if any(c.text for c in cells):
            lines.append(Line(cells))
    return lines


def read_docx(data: bytes, options: ExtractOptions = ExtractOptions()) -> ReadDocument:
    """Read a .docx; raises ``InputError`` for empty, encrypted, damaged or bomb files."""
    if not data:
        raise InputError(EMPTY, "The DOCX is empty (0 bytes); upload the report file itself.")
    _check_zip(data, options)
    import docx
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception:   # python-docx raises KeyError/ValueError/lxml errors for broken parts
        raise InputError(CORRUPT, "The DOCX cannot be read (damaged parts); save it again from Word.") from None
    lines: list[Line] = []
    texts: list[str] = []
    for child in document.element.body.iterchildren():
        if child.tag == f"{_W}p":
            text = normalize_text("".join(t.text or "" for t in child.iter(f"{_W}t"))).strip()
            if text:
                lines.append(Line([Cell(text)]))
                texts.append(text)
        elif child.tag == f"{_W}tbl":
            for line in _table_lines(child):
                lines.append(line)
                texts.append(" ".join(c.text for c in line.cells if c.text))
        if sum(len(t) for t in texts) > options.limits.max_text_chars:
            raise InputError(TOO_LARGE, "The DOCX holds far more text than a report; split it.")
    return ReadDocument(lines=lines, text="\n".join(texts), format="docx", pages=1)
