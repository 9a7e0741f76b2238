"""Bad input ends as a ``failed`` document (or a flagged one) with a clear reason, never a traceback."""
from __future__ import annotations

import os

import pytest

from testkit import SEED
from extractors.pipeline import extract_bytes, extract_path
from models.options import ExtractOptions, Limits


def test_bad_input_empty_file():
    r = extract_bytes(b"", "empty.txt")
    assert r.status == "failed" and r.error_code == "empty_file" and r.error.endswith(".")


def test_bad_input_binary_junk_with_text_extension():
    r = extract_bytes(os.urandom(4096), "junk.txt")
    assert r.status == "failed" and r.error_code in ("not_text", "not_a_report")


def test_bad_input_text_that_is_not_a_report():
    text = "天气预报：明天晴，最高气温25度。\n" * 50 + "2020年1月1日发布。\n"
    r = extract_bytes(text.encode(), "weather.txt")
    assert r.status == "failed" and r.error_code == "not_a_report"
    assert "annual report" in r.error


def test_bad_input_tables_cut_off_are_flagged_not_guessed():
    text = SEED.read_text("utf-8")
    cut = text[: text.index("(四) 无法提供")]
    r = extract_bytes(cut.encode(), "cut.txt")
    assert r.status == "needs_review"
    assert r.fields["apply.unable.not_held.natural_person"].review
    assert r.fields["apply.unable.not_held.natural_person"].value is None
    assert "row not found in the document" in r.fields["apply.carried_out.total"].reasons
    assert not r.fields["apply.new.total"].review and r.fields["apply.new.total"].value == 0


def test_bad_input_oversized_file_fails_fast(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:       # 200 MB sparse file: never read into memory
        f.truncate(200 * 1024 * 1024)
    r = extract_path(big)
    assert r.status == "failed" and r.error_code == "too_large" and "MiB" in r.error


def test_bad_input_text_over_char_limit():
    opts = ExtractOptions(limits=Limits(max_text_chars=1000))
    r = extract_bytes(SEED.read_bytes(), SEED.name, opts)
    assert r.status == "failed" and r.error_code == "too_large"


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "utf-16", "utf-8-sig", "big5"])
def test_bad_input_other_encodings_read_right(encoding):
    text = SEED.read_text("utf-8")
    if encoding == "big5":
        text = text.replace("“", '"').replace("”", '"')
        try:
            data = text.encode("big5")
        except UnicodeEncodeError:
            pytest.skip("seed has characters outside Big5")
    else:
        data = text.encode(encoding)
    r = extract_bytes(data, "seed.txt")
    assert r.status == "needs_review" and r.meta.agency == "洛龙区民政局"
    assert sum(f.review for f in r.fields.values()) == 5


def test_bad_input_invalid_utf8_bytes_inside_text():
    data = SEED.read_bytes().replace("总体情况".encode(), b"\xff\xfe\xfa")
    r = extract_bytes(data, "seed.txt")
    assert r.status == "needs_review" and r.fields["apply.new.total"].value == 0


def test_bad_input_missing_file_and_directory(tmp_path):
    assert extract_path(tmp_path / "nope.txt").error_code == "file_not_found"
    assert extract_path(tmp_path).error_code == "is_directory"


def test_bad_input_deeply_nested_html():
    html = "<html><body>" + "<div>" * 100000 + "x" + "</div>" * 100000 + "</body></html>"
    r = extract_bytes(html.encode(), "deep.html")
    assert r.status == "failed"


def test_bad_input_billion_laughs_entity_html():
    html = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
            '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><html><body><p>&lol3;</p></body></html>')
    r = extract_bytes(html.encode(), "laughs.html")
    assert r.status == "failed" and r.error


def test_bad_input_renamed_real_report_read_by_content():
    r = extract_bytes(SEED.read_bytes(), "report.pdf")      # a text report with a wrong extension
    assert r.status == "needs_review" and r.meta.agency == "洛龙区民政局"
    assert sum(f.review for f in r.fields.values()) == 5


def test_bad_input_unknown_binary_type():
    r = extract_bytes(b"\x00\x01\x02binary\x00" * 100, "thing.bin")
    assert r.status == "failed" and r.error_code == "unsupported_type"
