"""Generate report texts for archive tests from the seed (``samples/luolong-minzheng-2020.txt``).

Only the numbers of table 2's 自然人 and 总计 columns, the organ and the year change, and the
generated tables keep every in-document relation (balance, results total, row totals), so a
test controls exactly which collection-level relation breaks.
"""
from __future__ import annotations

import re
from pathlib import Path

SEED = Path(__file__).resolve().parents[2] / "samples" / "luolong-minzheng-2020.txt"
SEED_AGENCY = "洛龙区民政局"
SEED_YEAR = "2020"

_ROWS = {
    "new": "一、本年新收政府信息公开申请数量",
    "carried_in": "二、上年结转政府信息公开申请数量",
    "granted": "(一) 予以公开",
    "total": "(七)总计",
    "carried_out": "四、结转下年度继续办理",
}


def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def _set_row(text: str, label: str, value: int) -> str:
    """Put ``value`` in the 自然人 and 总计 cells of the row labelled ``label`` (others 0)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if label in line:
            tokens = line.split("\t")
            nums = [j for j, t in enumerate(tokens) if re.fullmatch(r"\d+", t.strip())]
            cells = nums[-7:]
            for n, j in enumerate(cells):
                tokens[j] = str(value if n in (0, 6) else 0)
            lines[i] = "\t".join(tokens)
            return "\n".join(lines)
    raise AssertionError(f"row {label!r} not in the seed")


def make_report(agency: str, year: int, *, new: int, carried_in: int, carried_out: int) -> str:
    """A report of ``agency`` for ``year`` whose natural-person applications are ``new`` +
    ``carried_in``, all granted except ``carried_out`` carried into next year."""
    handled = new + carried_in - carried_out
    assert handled >= 0
    text = seed_text().replace(SEED_AGENCY, agency).replace(SEED_YEAR, str(year))
    for key, value in (("new", new), ("carried_in", carried_in), ("granted", handled), ("total", handled),
                       ("carried_out", carried_out)):
        text = _set_row(text, _ROWS[key], value)
    return text
