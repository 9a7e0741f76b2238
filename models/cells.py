"""What every reader yields: lines of cells with optional geometry.

A reader (text, HTML, markdown, PDF text layer, OCR) turns its input into a ``ReadDocument``:
``lines`` in reading order, each a list of ``Cell`` left to right. A table row is one line;
a cell the source prints blank is an empty ``Cell`` where the format keeps its position
(tab-separated dumps, HTML ``<td>``, PDF/OCR grids). Everything after the reader is shared.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

BBox = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    page: int | None = None          # 1-based page number, None when the format has no pages
    bbox: BBox | None = None         # x0, y0, x1, y1 in page pixels or PDF points
    score: float = math.nan          # reader/OCR confidence in [0, 1]; NaN = not measured
    alternatives: tuple[str, ...] = ()  # other readings of the text (OCR candidates)


@dataclass(slots=True)
class Line:
    cells: list[Cell]
    page: int | None = None

    @property
    def text(self) -> str:
        return "\t".join(c.text for c in self.cells)


@dataclass(slots=True)
class ReadDocument:
    """A reader's output. ``text`` is the plain running text used for metadata detection."""

    lines: list[Line]
    text: str
    format: str                      # "text", "markdown", "html", "pdf", "scan", "docx"
    pages: int = 1
    warnings: list[str] = field(default_factory=list)
    page_images: dict[int, bytes] = field(default_factory=dict)  # optional PNG per page for review
