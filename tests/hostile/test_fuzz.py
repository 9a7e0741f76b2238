"""Fuzzing (issue 7) with hypothesis, bounded: each target runs ``FUZZ_EXAMPLES`` examples (a few
seconds; raise ``NIANBAO_FUZZ_EXAMPLES`` for a longer soak). The invariant for the readers: any
bytes give a ``ReadDocument`` or an ``InputError`` with one sentence, nothing else. For the digit
splitter: every split is a real cut of the digits into valid numbers, within the budget.
Executions per target are printed at the end of the run."""
from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from extractors.grid import Item, _splits, _valid_number, decode
from extractors.read_html import read_html
from extractors.read_markdown import read_markdown
from extractors.read_text import read_text
from extractors.segment import Token
from models.cells import Cell, ReadDocument
from models.errors import InputError
from models.options import ExtractOptions, Limits

N = int(os.environ.get("NIANBAO_FUZZ_EXAMPLES", "1500"))
FUZZ = settings(max_examples=N, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OPTIONS = ExtractOptions(limits=Limits(max_text_chars=200_000, max_html_depth=200))
EXECUTIONS: dict[str, list[float]] = {}

# Text made of the pieces reports are made of, so the fuzzer reaches past the decoder.
PIECES = ["政府信息公开", "申请", "本年新收", "自然人", "|", " | ", "\t", "\n", "## ", "---", "<table>", "</table>",
          "<tr>", "</tr>", "<td>", "</td>", "<br>", "<div>", "</div>", "&nbsp;", "&lol;", "<!DOCTYPE x [",
          "<!ENTITY a \"b\">", "]>", "<?xml version='1.0'?>", "<script>", "</script>", "0", "12", "3.5", "-",
          "（一）", "一、", "\\\"", "\ufffd", "\x00", "\r", "<", ">", "&", "&#x0;", "&#1114112;", "<p", "\u202e"]
report_like = st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=200).map("".join)
encodings = st.sampled_from(["utf-8", "gb18030", "big5", "utf-16", "utf-8-sig", "latin-1"])


def _encoded(text: str, enc: str) -> bytes:
    return text.encode(enc, errors="replace") if enc != "latin-1" else text.encode("utf-8", "replace")[::-1]


def _count(name: str) -> None:
    EXECUTIONS.setdefault(name, [0, time.monotonic()])[0] += 1


def _read_ok(reader, name: str, data: bytes) -> None:
    _count(name)
    try:
        doc = reader(data, OPTIONS)
    except InputError as e:
        assert e.message.endswith(".") and "\n" not in e.message, e.message
        return
    assert isinstance(doc, ReadDocument)
    assert all(isinstance(c.text, str) for line in doc.lines for c in line.cells)


@pytest.mark.parametrize("reader,name", [(read_text, "read_text"), (read_markdown, "read_markdown"),
                                         (read_html, "read_html")])
def test_fuzz_reader_on_random_bytes(reader, name):
    @FUZZ
    @given(st.binary(max_size=4096))
    def run(data):
        _read_ok(reader, name + " (bytes)", data)
    run()


@pytest.mark.parametrize("reader,name", [(read_text, "read_text"), (read_markdown, "read_markdown"),
                                         (read_html, "read_html")])
def test_fuzz_reader_on_report_like_text(reader, name):
    @FUZZ
    @given(report_like, encodings)
    def run(text, enc):
        _read_ok(reader, name + " (text)", _encoded(text, enc))
    run()


def test_fuzz_html_deep_nesting_is_refused_or_read():
    @settings(max_examples=max(20, N // 20), deadline=None, database=None)
    @given(st.integers(1, 20_000), st.sampled_from(["div", "table", "td", "b", "p", "span"]))
    def run(depth, tag):
        _read_ok(read_html, "read_html (nesting)", (f"<{tag}>" * depth + "申请" + f"</{tag}>" * depth).encode())
    run()


digits = st.text(alphabet="0123456789.", min_size=1, max_size=24)


def test_fuzz_digit_splitter():
    @settings(max_examples=N * 5, deadline=None, database=None)
    @given(digits, st.integers(1, 8), st.integers(1, 5000))
    def run(ds, k, budget):
        _count("grid._splits")
        left = [budget]
        out = _splits(ds, k, left)
        assert len(out) <= budget and left[0] >= 0
        for parts in out:
            assert len(parts) == k and "".join(parts) == ds
            assert all(_valid_number(p) for p in parts)
    run()


def _item(text: str, kind: str) -> Item:
    cell = Cell(text)
    return Item(kind, Token(kind, text, 0, cell, glued=len(text) > 3, delimited=False), 0)


def test_fuzz_digit_decoder():
    @settings(max_examples=N * 2, deadline=None, database=None)
    @given(st.lists(st.tuples(st.text(alphabet="0123456789.-", max_size=12), st.booleans()), min_size=1, max_size=9),
           st.lists(st.sampled_from(["count", "signed", "amount"]), min_size=1, max_size=9),
           st.integers(1, 20_000))
    def run(cells, kinds, budget):
        _count("grid.decode")
        items = [_item(t, "value" if t and not blank else "blank") for t, blank in cells]
        cands, uncertain, glued = decode(items, kinds, budget)
        assert isinstance(uncertain, bool) and isinstance(glued, bool)
        assert isinstance(cands, list)
    run()


def test_fuzz_report_executions(capsys):
    """Last in the file: print what ran (executions, seconds, crashes = failures above)."""
    with capsys.disabled():
        print("\nfuzz executions per target:")
        for name, (n, started) in sorted(EXECUTIONS.items()):
            print(f"  {name:<28} {n:>7} executions")
