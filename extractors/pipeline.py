"""The one entry point: bytes in, an ``ExtractionResult`` out. Failures are values, never raised.

Readers are picked from a format table (``READERS``); everything after the reader is shared.
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Callable

from models.cells import ReadDocument
from models.errors import InputError, UNSUPPORTED, TOO_LARGE, EMPTY
from models.options import ExtractOptions
from models.result import ExtractionResult

from . import deadline

log = logging.getLogger(__name__)

Reader = Callable[[bytes, ExtractOptions], ReadDocument]


def _reader(module: str, func: str) -> Reader:
    """Import a reader lazily: the OCR/PDF stacks are heavy and a text batch never needs them."""
    def run(data: bytes, options: ExtractOptions) -> ReadDocument:
        import importlib
        return getattr(importlib.import_module(f"extractors.{module}"), func)(data, options)
    run.__name__ = func
    return run


READERS: dict[str, Reader] = {
    "text": _reader("read_text", "read_text"),
    "markdown": _reader("read_markdown", "read_markdown"),
    "html": _reader("read_html", "read_html"),
    "pdf": _reader("read_pdf", "read_pdf"),
    "image": _reader("read_scan", "read_image"),
    "docx": _reader("read_docx", "read_docx"),
}

_EXTENSIONS = {
    ".txt": "text", ".text": "text", ".csv": "text", ".tsv": "text",
    ".md": "markdown", ".markdown": "markdown",
    ".html": "html", ".htm": "html", ".shtml": "html", ".xhtml": "html",
    ".pdf": "pdf",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "image", ".tiff": "image",
    ".bmp": "image", ".webp": "image",
    ".docx": "docx",
}


def sniff_format(data: bytes, filename: str = "") -> str | None:
    """The format by content first (magic bytes), then by extension; None when unknown.

    Content wins so that a real report renamed with a wrong extension is still read right.
    """
    head = data[:2048]
    if head.startswith(b"%PDF-") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM", b"RIFF")):
        return "image"
    if head.startswith(b"PK\x03\x04"):
        return "docx" if b"word/" in data[:65536] or filename.lower().endswith(".docx") else None
    ext = Path(filename).suffix.lower()
    low = head.lower()
    if b"<html" in low or b"<table" in low or b"<!doctype html" in low or b"<p" in low[:200]:
        return "html"
    if ext in _EXTENSIONS and _EXTENSIONS[ext] in ("text", "markdown", "html"):
        return _EXTENSIONS[ext]
    # A binary extension whose bytes are not that format (a text report saved as .pdf) or no
    # known extension: decide by content; the text reader refuses real binary junk itself.
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    if b"\n|" in head or head.startswith(b"|") or b"\n## " in head:
        return "markdown"
    return "text"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _failures_as_values(source: str, digest: str, work: Callable[[], ExtractionResult]) -> ExtractionResult:
    """Run ``work``; bad input, memory exhaustion and bugs become a ``failed`` result, timed."""
    started = time.perf_counter()
    try:
        result = work()
    except InputError as e:
        result = ExtractionResult.failed(source, digest, e.code, e.message)
    except MemoryError:
        result = ExtractionResult.failed(source, digest, TOO_LARGE,
                                         "The document needs more memory than allowed; split it into smaller files.")
    except Exception as e:  # a bug: keep the batch going, log the traceback, tell the user plainly
        log.exception("extraction crashed on %s", source)
        result = ExtractionResult.failed(source, digest, "internal_error",
                                         f"nianbao could not process this file ({type(e).__name__}); "
                                         "it has been logged, please report it with the file.")
    result.seconds = time.perf_counter() - started
    return result


def extract_bytes(data: bytes, source: str, options: ExtractOptions = ExtractOptions()) -> ExtractionResult:
    """Read, reconstruct, map, validate and route one document. Never raises for bad input."""
    digest = sha256_hex(data)

    def work() -> ExtractionResult:
        if not data:
            raise InputError(EMPTY, "The file is empty (0 bytes); upload the report file itself.")
        if len(data) > options.limits.max_file_bytes:
            raise InputError(TOO_LARGE, f"The file is larger than the {options.limits.max_file_bytes // 2**20} MiB "
                             "limit; split it or raise the limit.")
        fmt = sniff_format(data, source)
        if fmt is None and data.startswith(b"PK\x03\x04"):
            raise InputError(UNSUPPORTED, "This is a zip archive, not one report; unpack it, or give it to "
                             "`nianbao archive`, which reads the reports inside.")
        if fmt is None:
            raise InputError(UNSUPPORTED, f"Unsupported file type {Path(source).suffix or '(none)'}; "
                             "give a text, markdown, HTML, PDF, DOCX or image file.")
        with deadline.budget(options.limits.max_seconds_per_document):
            doc = READERS[fmt](data, options)
            deadline.check("after reading")
            return extract_read_document(doc, source, digest, options)

    return _failures_as_values(source, digest, work)


def extract_pages(pages: list, data: bytes, source: str, options: ExtractOptions = ExtractOptions()) -> ExtractionResult:
    """Join per-page PDF reads (the Celery fan-out) into a result, with ``extract_bytes``' rules."""
    digest = sha256_hex(data)

    def work() -> ExtractionResult:
        from .read_pdf import assemble_pages
        return extract_read_document(assemble_pages(pages, len(pages)), source, digest, options)

    return _failures_as_values(source, digest, work)


def extract_path(path: str | Path, options: ExtractOptions = ExtractOptions()) -> ExtractionResult:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > options.limits.max_file_bytes:
            return ExtractionResult.failed(str(path), "", TOO_LARGE,
                                           f"The file is {size // 2**20} MiB, over the "
                                           f"{options.limits.max_file_bytes // 2**20} MiB limit; "
                                           "split it or raise the limit.")
        data = p.read_bytes()
    except FileNotFoundError:
        return ExtractionResult.failed(str(path), "", "file_not_found", f"No such file: {path}.")
    except IsADirectoryError:
        return ExtractionResult.failed(str(path), "", "is_directory",
                                       f"{path} is a directory; give files, or use `nianbao archive` for folders.")
    except OSError as e:
        return ExtractionResult.failed(str(path), "", "unreadable", f"Cannot read {path}: {e.strerror}.")
    return extract_bytes(data, str(path), options)


def extract_read_document(doc: ReadDocument, source: str, digest: str,
                          options: ExtractOptions = ExtractOptions()) -> ExtractionResult:
    """The shared stages after any reader: segment, map, reconstruct, validate, route."""
    from . import assemble
    return assemble.extract_fields(doc, source, digest, options)
