"""Markdown from PDF converters: ``| a | b |`` rows are table lines, anything else is a text line.

Converters spill labels away from their value rows and drop labels altogether
(shared/devset/shanghai-kjw-2024.md); that is the row-reconstruction stage's job, this reader only
keeps cell positions (an empty ``|  |`` is a blank cell).
"""
from __future__ import annotations

import re

from models.cells import Cell, Line, ReadDocument
from models.options import ExtractOptions

from .decode import decode_text
from .normalize import normalize

_SEPARATOR_ROW = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def read_markdown(data: bytes, options: ExtractOptions) -> ReadDocument:
    text = decode_text(data, options.limits)
    lines: list[Line] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        s = raw.strip()
        if not s or _SEPARATOR_ROW.match(s):
            continue
        if s.startswith("|") and s.count("|") >= 2:
            inner = s[1:-1] if s.endswith("|") else s[1:]
            lines.append(Line([Cell(normalize(p)) for p in inner.split("|")]))
        else:
            s = re.sub(r"^#+\s*", "", s)
            lines.append(Line([Cell(normalize(s))]))
    plain = "\n".join(line.text.replace("\t", " ") for line in lines)
    return ReadDocument(lines=lines, text=normalize(plain), format="markdown")
