"""Plain-text reports (web text dumps, tab-separated table dumps), UTF-8 or GB18030/GBK.

One ``Line`` per text line; a tab separates cells (tab dumps keep blank cells as empty strings,
e.g. shared/devset/shanghai-bgt-2019-dump.txt). A line without tabs is one cell.
"""
from __future__ import annotations

from models.cells import Cell, Line, ReadDocument
from models.options import ExtractOptions

from .decode import decode_text
from .normalize import normalize


def lines_from_text(text: str) -> list[Line]:
    lines: list[Line] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not raw.strip():
            continue
        parts = raw.split("\t") if "\t" in raw else [raw]
        lines.append(Line([Cell(normalize(p)) for p in parts]))
    return lines


def read_text(data: bytes, options: ExtractOptions) -> ReadDocument:
    text = decode_text(data, options.limits)
    return ReadDocument(lines=lines_from_text(text), text=normalize(text.replace("\t", " ")), format="text")
