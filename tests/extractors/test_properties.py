"""Property tests: whatever breakage a dump shows, no wrong value is ever returned unflagged.

Reports are typeset from random field values that satisfy the form's relations (tests/synth.py),
then broken the ways archives break them: whitespace re-flowed, labels split at random points
with the tail printed later, cells run together, random cells blanked, labels dropped, page
footers inside the table.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synth import consistent_values, render_html, render_tab_dump  # noqa: E402

from extractors.pipeline import extract_bytes  # noqa: E402


def _silent_errors(result, truth):
    assert result.status != "failed", result.error
    bad = []
    for key, f in result.fields.items():
        if not f.review and f.value != truth[key] and not (
                isinstance(truth[key], float) and abs((f.value or 0) - truth[key]) < 1e-6):
            bad.append((key, f.value, truth[key], f.text, f.reasons))
    return bad


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(seed=st.integers(0, 10**6), template=st.sampled_from(["2019", "2021"]), data=st.data())
def test_properties_breakage_never_yields_silent_errors(seed, template, data):
    rng = random.Random(seed)
    form, truth = consistent_values(rng, template)
    apply_rows = [r.key for r in form.apply_rows]
    keys = list(truth)
    blank = set(data.draw(st.lists(st.sampled_from(keys), max_size=12), label="blank"))
    glue = set(data.draw(st.lists(st.sampled_from(apply_rows), max_size=4), label="glue"))
    splits = data.draw(st.dictionaries(st.sampled_from(apply_rows), st.integers(2, 12), max_size=3), label="split")
    drop = set(data.draw(st.lists(st.sampled_from(apply_rows), max_size=2), label="drop"))
    footer = data.draw(st.sampled_from([0, 0, 7, 11]), label="footer")
    indent = data.draw(st.booleans(), label="indent")
    text = render_tab_dump(form, truth, blank=blank, glue_rows=glue - drop, split_labels=splits,
                           drop_labels=drop, footer_every=footer, indent=indent)
    if data.draw(st.booleans(), label="reflow"):
        # re-flow whitespace: random spaces inside labels and around cells, CRLF line ends
        text = "".join(ch + (" " if "\u4e00" <= ch <= "\u9fff" and rng.random() < 0.05 else "") for ch in text)
        text = text.replace("\n", "\r\n")
    result = extract_bytes(text.encode("utf-8"), "synthetic.txt")
    assert _silent_errors(result, truth) == []
    for k in blank:
        f = result.fields[k]
        assert f.review or f.value == truth[k]


@SETTINGS
@given(seed=st.integers(0, 10**6), template=st.sampled_from(["2019", "2021"]),
       blank_share=st.floats(0, 0.3), encoding=st.sampled_from(["utf-8", "gb18030"]))
def test_properties_html_blank_cells_are_pinned_or_flagged(seed, template, blank_share, encoding):
    rng = random.Random(seed)
    form, truth = consistent_values(rng, template)
    blank = {k for k in truth if rng.random() < blank_share}
    html = render_html(form, truth, blank=blank).replace("charset='utf-8'", f"charset='{encoding}'")
    result = extract_bytes(html.encode(encoding), "synthetic.html")
    assert _silent_errors(result, truth) == []
    assert result.meta.template == template


@SETTINGS
@given(seed=st.integers(0, 10**6), template=st.sampled_from(["2019", "2021"]))
def test_properties_fully_glued_text_decodes_or_flags(seed, template):
    """The whole table run together as in web text dumps (pingtan-2021.txt): 713000074 …"""
    rng = random.Random(seed)
    form, truth = consistent_values(rng, template, zero_share=0.75)
    text = render_tab_dump(form, truth, glue_rows={r.key for r in form.apply_rows})
    text = text.replace("\t", "").replace("\n", "") if rng.random() < 0.5 else text.replace("\t", "")
    result = extract_bytes(text.encode(), "glued.txt")
    assert _silent_errors(result, truth) == []


@SETTINGS
@given(seed=st.integers(0, 10**6), template=st.sampled_from(["2019", "2021"]), data=st.data())
def test_properties_misread_cells_are_caught_by_relations(seed, template, data):
    """Numbers misread (OCR-style digit swaps, a lost or extra digit) in up to three cells of the
    application and appeal tables: each misread is flagged, never returned as a confident value."""
    rng = random.Random(seed)
    form, truth = consistent_values(rng, template)
    keys = [k for k in truth if not k.startswith("active.")]
    misread = data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True), label="misread")
    printed = dict(truth)
    for k in misread:
        v = int(truth[k])
        kind = data.draw(st.sampled_from(["swap", "drop", "add"]), label="kind")
        if kind == "swap" or v < 10:
            printed[k] = v + data.draw(st.sampled_from([1, 2, 3, 5, 10]), label="delta")
        elif kind == "drop":
            printed[k] = int(str(v)[:-1])
        else:
            printed[k] = int(str(v) + "1")
    result = extract_bytes(render_tab_dump(form, printed).encode("utf-8"), "misread.txt")
    assert _silent_errors(result, truth) == []
