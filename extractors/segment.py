"""Stage 2: cells -> tokens (label text, values, blanks), keeping where each came from.

A delimited cell that holds only a number is one value. Text where labels and numbers run
together (``规章000行政规范性文件693665``, shared/devset/pingtan-2021.txt) is cut into label and
number runs; such a number run is *glued*: it may hold several cells and the grid stage
enumerates its splits. A space between digits is a boundary (``23 0 00 0 023``). A digit with
``.``/``、`` right before label text is the label's item number (``00000002.其他法律…`` is
``0000000`` + ``2.其他法律…``). A number followed by a counting word (``34 件``) is narrative.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from models.cells import Cell, ReadDocument

BLANK_MARKS = frozenset({"", "/", "-", "—", "——", "–", "－", "无", "\\", "×", "--", "---", "/ "})
_NUMBER_CELL = re.compile(r"^[+-]?\s*\d[\d,，]*(?:\.\d+)?\s*(?:万元|元|万)?$")
_RUN = re.compile(
    r"(?P<num_before_item>\d+(?=\d[.、](?!\d)))"  # digits glued before an item number
    r"|(?P<item>\d[.、](?![\d]))"                          # item number of a label: 2. / 3、
    r"|(?P<num>[+-]?\d+(?:\.\d+)?(?:万元|元)?)"
    r"|(?P<space>\s+)"
    r"|(?P<text>[^\d\s]+)"
)
# Counting words after a number mark it as narrative, not a table cell.
_COUNTERS = set("件项条份个次人年月日号家篇期批场余多亿%‰岁名户")
_ARTEFACT = re.compile(r"^[-=_—–·.\s]{3,}$|^—?\s*\d{1,3}\s*—$|^-\s*\d{1,3}\s*-$|^第\s*\d+\s*页")


@dataclass(slots=True)
class Token:
    kind: str           # "label" | "value" | "blank"
    text: str           # normalised printed text
    line: int           # index of the Line in the ReadDocument
    cell: Cell          # source cell (page, bbox, OCR score)
    glued: bool = False  # a value run that may hold several cells (no separators printed)
    delimited: bool = False  # came from a line with several cells (positions are meaningful)


def is_artefact(text: str) -> bool:
    """``--------``, page footers ``— 5 —`` / ``- 5 -`` / ``第5页`` inside tables."""
    return bool(_ARTEFACT.match(text.strip()))


def _tokens_of_mixed(text: str, line_no: int, cell: Cell, delimited: bool) -> list[Token]:
    out: list[Token] = []
    pieces = [(m.lastgroup, m.group()) for m in _RUN.finditer(text)]
    label_buf = ""
    for i, (kind, s) in enumerate(pieces):
        if kind == "item":
            label_buf += s
            continue
        if kind == "text":
            label_buf += s
            continue
        if kind == "space":
            if label_buf:
                label_buf += " "
            continue
        # a number (kind "num" or "num_before_item")
        nxt = next((p for p in pieces[i + 1:] if p[0] != "space"), None)
        if nxt is not None and nxt[0] == "text" and nxt[1][0] in _COUNTERS:
            label_buf += s                  # narrative count: part of the running text
            continue
        if label_buf.strip():
            out.append(Token("label", label_buf.strip(), line_no, cell, delimited=delimited))
        label_buf = ""
        out.append(Token("value", s.replace("，", "").replace(",", ""), line_no, cell, glued=True,
                         delimited=delimited))
    if label_buf.strip():
        out.append(Token("label", label_buf.strip(), line_no, cell, delimited=delimited))
    return out


def tokenize(doc: ReadDocument) -> list[Token]:
    """All tokens of the document in reading order."""
    tokens: list[Token] = []
    for line_no, line in enumerate(doc.lines):
        delimited = len(line.cells) > 1
        for cell in line.cells:
            text = cell.text.strip()
            if text in BLANK_MARKS:
                if delimited:
                    tokens.append(Token("blank", text, line_no, cell, delimited=True))
                continue
            if is_artefact(text):
                continue
            if _NUMBER_CELL.match(text):
                compact = re.sub(r"[\s,，]", "", text)
                if delimited:
                    tokens.append(Token("value", compact, line_no, cell, glued=False, delimited=True))
                else:
                    # one cell on its own line: spaces separate values ("0 0 0"), digits may be glued
                    for part in text.replace(",", "").replace("，", "").split():
                        tokens.append(Token("value", part, line_no, cell, glued=True))
                continue
            tokens.extend(_tokens_of_mixed(text, line_no, cell, delimited))
    return tokens
