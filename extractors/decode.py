"""Bytes -> str for text-like inputs: BOMs, UTF-8, GB18030/GBK, Big5, UTF-16, then detection.

Binary junk is refused with a clear message instead of being decoded into garbage.
"""
from __future__ import annotations

from models.errors import InputError, BINARY, EMPTY, TOO_LARGE
from models.options import Limits


def _looks_binary(data: bytes) -> bool:
    sample = data[:65536]
    if not sample:
        return False
    if sample.count(b"\x00") > len(sample) // 100 and not (sample[:2] in (b"\xff\xfe", b"\xfe\xff")):
        return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control > len(sample) // 50


def _cjk_share(text: str) -> float:
    if not text:
        return 0.0
    sample = text[:20000]
    good = sum(1 for ch in sample if "\u4e00" <= ch <= "\u9fff" or ch.isascii())
    bad = sample.count("\ufffd")
    return (good - 10 * bad) / len(sample)


def decode_text(data: bytes, limits: Limits = Limits()) -> str:
    """Decode a text-like file; raises InputError for empty, binary or oversized input."""
    if not data.strip():
        raise InputError(EMPTY, "The file is empty; upload the report itself.")
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8", errors="replace")
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    else:
        if _looks_binary(data):
            raise InputError(BINARY, "The file is binary, not text; give the report as text, HTML, PDF, DOCX or an image.")
        text = None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            best, best_share = None, -1.0
            for enc in ("gb18030", "big5"):
                try:
                    cand = data.decode(enc)
                except UnicodeDecodeError:
                    continue
                share = _cjk_share(cand)
                if share > best_share:
                    best, best_share = cand, share
            if best is None or best_share < 0.8:
                from charset_normalizer import from_bytes
                match = from_bytes(data[:2_000_000]).best()
                if match is not None and (best is None or _cjk_share(str(match)) > best_share):
                    best = data.decode(match.encoding, errors="replace")
                if best is None:
                    best = data.decode("utf-8", errors="replace")
            text = best
    if len(text) > limits.max_text_chars:
        raise InputError(TOO_LARGE, f"The text has {len(text):,} characters, more than the {limits.max_text_chars:,} "
                         "a report can have; split the file into single reports.")
    if text.count("\ufffd") > max(20, len(text) // 20):
        raise InputError(BINARY, "The file is not readable text in any Chinese encoding; check that it is the report.")
    return text
