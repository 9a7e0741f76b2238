"""Options and resource limits as data, one frozen object read once by the CLI / worker."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int = 100 * 1024 * 1024       # larger inputs fail fast (upload / archive / CLI)
    max_text_chars: int = 2_000_000               # a report's text is ~10-60k chars; beyond this it is not one
    max_pages: int = 200                          # PDF pages read (reports have 5-30)
    max_image_pixels: int = 80_000_000            # decoded pixels per page image (A4 at 600 dpi ~ 35 M)
    max_html_depth: int = 500                     # nesting depth accepted from HTML
    max_seconds_per_document: float = 300.0       # wall time budget per document
    # Added for hostile inputs (issue 7): one PDF stream (content, image, object stream) may not
    # inflate beyond this (600-dpi A4 RGB ~ 105 MB); a "decompression bomb" stream fails fast.
    max_pdf_stream_bytes: int = 128 * 1024 * 1024
    max_zip_ratio: float = 200.0                  # archive member uncompressed/compressed ratio
    max_zip_total_bytes: int = 2 * 1024**3        # total uncompressed bytes taken from one zip
    # Added for `nianbao archive` (issue 6): a zip listing more members than this is not a
    # report archive (or is a bomb made of many tiny entries); the rest are reported as skipped.
    max_zip_members: int = 100_000


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    limits: Limits = Limits()
    review_threshold: float = 0.8                 # a field below this confidence goes to review
    max_split_candidates: int = 200_000           # digit-split enumeration budget per row
    ocr_engine: str = "rapidocr"                  # "rapidocr" (default, offline wheel) or "paddleocr"
    paddle_model_dir: str | None = None           # local PP-OCR model dirs for the optional engine
    render_dpi: int = 200                         # page rendering for OCR and reviewer crops
    rules_file: str | None = None                 # learned label variants (else env NIANBAO_RULES)
