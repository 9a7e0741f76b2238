"""Text normalisation shared by every stage: NFKC, radicals, punctuation, whitespace.

pdfminer-based tools return Kangxi radicals (⼀ U+2F00 for 一); NFKC folds those, but not the
CJK Radicals Supplement block (⺠ U+2EA0 for 民), which needs an explicit map (notes/pdf-and-ocr.md).
"""
from __future__ import annotations

import re
import unicodedata

# CJK Radicals Supplement characters seen standing in for full ideographs.
_RADICAL_SUPPLEMENT = str.maketrans({
    "⺠": "民", "⻓": "长", "⻔": "门", "⻅": "见", "⻆": "角", "⻜": "飞", "⻋": "车", "⻢": "马",
    "⻓": "长", "⻘": "青", "⻝": "食", "⻦": "鸟", "⻩": "黄", "⻬": "齐", "⻮": "齿", "⻯": "龙",
    "⺟": "母", "⺢": "水", "⺣": "火", "⺩": "王", "⺫": "目", "⺮": "竹", "⺶": "羊", "⺻": "聿",
    "⻁": "虎", "⻄": "西", "⻉": "贝", "⻌": "辶", "⻍": "辶", "⻏": "阝", "⻚": "页", "⻛": "风",
    "⻰": "龙", "⻳": "龟", "⺁": "厂", "⺇": "几", "⺌": "小", "⺍": "小", "⺕": "彐", "⺝": "月",
    "⺤": "爪", "⺦": "丬", "⺧": "牛", "⺨": "犬", "⺯": "糸", "⺰": "纟", "⺷": "羊", "⺹": "老",
    "⺾": "艹", "⺿": "艹", "⻀": "艹", "⻂": "衣", "⻃": "西", "⻅": "见", "⻈": "讠", "⻊": "足",
    "⻒": "镸", "⻗": "雨", "⻙": "韦", "⻢": "马", "⻤": "鬼", "⻥": "鱼", "⻨": "麦",
})

_PUNCT = str.maketrans({
    "“": '"', "”": '"', "‘": "'", "’": "'", "「": '"', "」": '"',
    "〔": "[", "〕": "]", "【": "[", "】": "]", "．": ".", "。": "。", "—": "—", "－": "-",
    "\u00a0": " ", "\u3000": " ", "\u200b": "", "\ufeff": "", "\u2002": " ", "\u2003": " ",
})

_SPACE_RE = re.compile(r"[ \t\r\f\v]+")


def normalize(text: str) -> str:
    """NFKC + radical map + unified quotes; keeps spaces (they can separate numbers)."""
    text = unicodedata.normalize("NFKC", text).translate(_RADICAL_SUPPLEMENT).translate(_PUNCT)
    return _SPACE_RE.sub(" ", text).strip()


_STRIP_FOR_MATCH = re.compile(r"[\s\"'“”‘’()（）\[\]、,，.。:：;；/\\|_\-—–~·•*#<>《》]+")


def compact(text: str) -> str:
    """The form used for label matching: normalised, no whitespace and no punctuation."""
    return _STRIP_FOR_MATCH.sub("", normalize(text))
