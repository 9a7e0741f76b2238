"""HTML pages as published on government sites.

Each ``<tr>`` becomes a ``Line`` of its ``<td>/<th>`` cells (a blank or ``&nbsp;`` cell stays an
empty cell in its place; ``<br>`` inside a cell joins the wrapped label); text outside tables
becomes one line per block. Nested layout tables are flattened to their innermost tables.
Several tables per page are read in document order. The walk is iterative, so deeply nested junk
cannot exhaust the stack.
"""
from __future__ import annotations

import re

import lxml.html
from lxml import etree

from models.cells import Cell, Line, ReadDocument
from models.errors import InputError, NOT_A_REPORT
from models.options import ExtractOptions

from .decode import decode_text
from .normalize import normalize

_BLOCK = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "br", "section", "article",
          "header", "footer", "blockquote", "pre", "title", "dd", "dt", "ul", "ol", "center", "hr"}
_SKIP = {"script", "style", "noscript", "template", "head"}


def _cell_text(td) -> str:
    parts: list[str] = []
    for node in td.iter():
        if node is not td and node.tag in ("br",):
            parts.append("")
        if isinstance(node.tag, str) and node.tag not in _SKIP and node.text:
            parts.append(node.text)
        if node is not td and node.tail:
            parts.append(node.tail)
    return normalize("".join(parts))


def _rows_of(table) -> list:
    """``<tr>`` elements whose nearest enclosing table is ``table``."""
    out = []
    for tr in table.iter("tr"):
        parent = tr.getparent()
        while parent is not None and parent.tag != "table":
            parent = parent.getparent()
        if parent is table:
            out.append(tr)
    return out


def lines_from_html(html: str, options: ExtractOptions) -> tuple[list[Line], str]:
    if html.count('\\"') > 10:            # a table kept inside a JS string literal
        html = html.replace('\\"', '"').replace("\\n", "\n").replace("\\/", "/")
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as e:
        raise InputError(NOT_A_REPORT, f"The HTML could not be parsed ({e}); save the page again as HTML.") from None
    lines: list[Line] = []
    buf: list[str] = []

    def flush() -> None:
        text = normalize("".join(buf))
        buf.clear()
        if text:
            lines.append(Line([Cell(text)]))

    # Iterative pre-order walk: (element, entering) pairs; tails are emitted on leave.
    stack: list[tuple[object, bool]] = [(root, True)]
    depth_guard = options.limits.max_html_depth
    depth = 0
    while stack:
        node, entering = stack.pop()
        if not entering:
            depth -= 1
            if node.tag in _BLOCK:
                flush()
            if node.tail:
                buf.append(node.tail)
            continue
        if not isinstance(node.tag, str) or node.tag in _SKIP:
            if getattr(node, "tail", None):
                buf.append(node.tail)
            continue
        if node.tag == "table" and not any(True for _ in node.iterdescendants("table")):
            flush()
            for tr in _rows_of(node):
                cells = [Cell(_cell_text(td)) for td in tr if isinstance(td.tag, str) and td.tag in ("td", "th")]
                if cells:
                    lines.append(Line(cells))
            if node.tail:
                buf.append(node.tail)
            continue
        if node.tag in _BLOCK:
            flush()
        if node.text:
            buf.append(node.text)
        depth += 1
        if depth > depth_guard:
            raise InputError(NOT_A_REPORT, f"The HTML nests deeper than {depth_guard} levels; it is not a report page.")
        stack.append((node, False))
        for child in reversed(list(node)):
            stack.append((child, True))
    flush()
    text = "\n".join(line.text.replace("\t", " ") for line in lines)
    return lines, text


def read_html(data: bytes, options: ExtractOptions) -> ReadDocument:
    html = decode_text(data, options.limits)
    html = re.sub(r"<\?xml[^>]*\?>", "", html, count=1)
    lines, text = lines_from_html(html, options)
    return ReadDocument(lines=lines, text=normalize(text), format="html")
