"""Metadata: issuing organ, the year the statistics cover (not the publication year), template."""
from __future__ import annotations

import re
from collections import Counter

from models.agencies import ABBREVIATIONS, ORGAN_ENDINGS
from models.forms import HEADERS_2019, HEADERS_2021

from .normalize import compact

_YEAR = r"((?:19|20)\d{2})"
_PERIOD = re.compile(r"统计(?:期限|周期|时限|时间|范围)[^0-9]{0,20}?" + _YEAR + r"\s*年")
_TITLE = re.compile(r"(?:^|\n|标题[:：][ \t]*)[ \t]*([^\n]{0,40}?)[ \t]*" + _YEAR + r"\s*年\s*度?\s*([^\n]{0,40}?)\s*"
                    r"(?:政府信息公开|政务公开|信息公开)\s*(?:工作)?\s*(?:年度)?\s*报\s*告")
_EDITED_BY = re.compile(r"由([\u4e00-\u9fff]{2,30}?)(?:办公室)?(?:负责)?编制")
_NARRATIVE_YEAR = re.compile(_YEAR + r"\s*年")
_DIGIT_GAP = re.compile(r"(?<=\d) (?=\d)")


def detect_year(text: str) -> int | None:
    text = _DIGIT_GAP.sub("", text[:40000])
    m = _PERIOD.search(text)
    if m:
        return int(m.group(1))
    m = _TITLE.search(text[:5000])
    if m:
        return int(m.group(2))
    years = [int(y) for y in _NARRATIVE_YEAR.findall(text[:20000]) if 2008 <= int(y) <= 2040]
    if years:
        return Counter(years).most_common(1)[0][0]
    return None


def _clean_agency(name: str) -> str | None:
    name = re.sub(r"[\s\"“”《》]", "", name)
    name = re.sub(r"^(?:关于|[0-9]+|.*?[:：])", "", name)
    name = re.sub(r"^[^\u4e00-\u9fff]+", "", name)         # OCR specks before the title
    if not (2 <= len(name) <= 40) or not re.search(r"[\u4e00-\u9fff]{2}", name):
        return None
    for short, full in ABBREVIATIONS.items():
        if name.endswith(short) and not name.endswith(full):
            name = name[: -len(short)] + full
    return name if name.endswith(ORGAN_ENDINGS) else None


def _title_candidates(head: str):
    """Title matches line by line, then with the first lines joined (a title wrapped in a PDF:
    ``上海市人民政府办公厅2019年政府信息公开工`` / ``作年度报告``)."""
    yield from _TITLE.finditer(head)
    first_lines = "".join(line.strip() for line in head.split("\n")[:6])
    yield from _TITLE.finditer(first_lines)
    lines = head.split("\n")[:8]
    for a, b in zip(lines, lines[1:]):          # organ on one line, year and title on the next
        yield from _TITLE.finditer(a.strip() + b.strip())


def detect_agency(text: str) -> str | None:
    head = _DIGIT_GAP.sub("", text[:5000])       # OCR: "20 23年"
    for m in _title_candidates(head):
        for part in (m.group(1), m.group(3)):
            name = _clean_agency(part or "")
            if name:
                return name
    m = _EDITED_BY.search(text[:20000])
    if m:
        return _clean_agency(m.group(1))
    return None


def detect_template(text: str, year: int | None) -> str:
    """2021 form by its column headers (本年制发件数 …), else 2019's; the year decides a tie."""
    c = compact(text)
    n2021 = sum(c.count(compact(h)) for h in HEADERS_2021) + 3 * c.count("逾期不补正")
    n2019 = sum(c.count(compact(h)) for h in HEADERS_2019)
    if n2021 > n2019:
        return "2021"
    if n2019 > n2021:
        return "2019"
    return "2021" if (year or 0) >= 2021 else "2019"
