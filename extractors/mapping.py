"""Stage 3: label text -> form rows, with a spaCy PhraseMatcher backed by rapidfuzz.

Rules are data: the keywords and labels of ``models.forms`` become phrase patterns on a blank
``zh`` pipeline (its default segmenter is per character, so a keyword matches inside
run-together text). Text the keywords miss (OCR damage, typos) is compared with every full
label by rapidfuzz; a fuzzy match is accepted only with a clear margin over the runner-up and
is reported as such so confidence can drop. Header and group words are matched too: they are
not rows, but they end the previous row's values.

Reviewer-confirmed label variants (learned rules) can be added with ``LabelMatcher.add_variant``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import spacy
from rapidfuzz import fuzz
from spacy.matcher import PhraseMatcher
from spacy.tokens import Span
from spacy.util import filter_spans

from models.forms import (ACTIVE_2019, ACTIVE_2021, APPEAL_GROUPS, APPEAL_RESULTS, APPLY_2019, APPLY_2021,
                          APPLY_GROUP_KEYWORDS, HEADERS_2019, HEADERS_2021, RowSpec)

from .normalize import compact

# Words that are headers, not rows: id -> phrases.
HEADER_WORDS: dict[str, tuple[str, ...]] = {
    "header.active": ("第二十条", "信息内容") + HEADERS_2019 + HEADERS_2021 + ("本年增/减", "采购总金额"),
    "header.apply": APPLY_GROUP_KEYWORDS + ("自然人", "商业企业", "科研机构", "社会公益组织", "法律服务机构",
                                            "勾稽关系", "收到和处理政府信息公开申请情况"),
    "header.appeal": tuple(g.label for g in APPEAL_GROUPS) + tuple(r.label for r in APPEAL_RESULTS[:4])
    + ("行政诉讼", "政府信息公开行政复议"),
    "header.total": ("总计",),
    "section.end": ("存在的主要问题", "其他需要报告的事项", "改进情况"),
}

FUZZY_MIN = 80.0        # rapidfuzz score (0-100) to accept a label we could not match by keyword
FUZZY_MARGIN = 8.0      # over the best label of another row
FUZZY_MAX_CHARS = 60    # the longest official label has 36 characters; longer text is narrative


@dataclass(frozen=True, slots=True)
class LabelHit:
    key: str            # "active.rules", "apply.denied.state_secret", "header.apply", ...
    score: float        # 1.0 keyword match; fuzzy ratio / 100 otherwise
    method: str         # "keyword" | "fuzzy" | "learned"
    text: str           # the printed label text this hit stands for


def _rows() -> dict[str, RowSpec]:
    rows: dict[str, RowSpec] = {}
    for r in ACTIVE_2019 + ACTIVE_2021:
        rows.setdefault(f"active.{r.key}", r)
    for r in APPLY_2019 + APPLY_2021:
        rows.setdefault(f"apply.{r.key}", r)
    return rows


class LabelMatcher:
    """Compiled matchers; costly to build, so one per process (``default_matcher()``)."""

    def __init__(self, learned: dict[str, list[str]] | None = None):
        self.nlp = spacy.blank("zh")
        self._memo: dict[str, list[LabelHit]] = {}
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="ORTH")
        self.rows = _rows()
        self.full_labels: dict[str, list[str]] = {}
        for key, row in self.rows.items():
            phrases = {compact(k) for k in row.keywords + row.variants}
            self.matcher.add(key, [self.nlp.make_doc(p) for p in phrases if p])
            self.full_labels[key] = [compact(row.label)] + [compact(v) for v in row.variants]
            # the label without its numbering, for fuzzy comparison of split/typo'd labels
            self.full_labels[key] += [_strip_numbering(x) for x in self.full_labels[key]]
        for key, words in HEADER_WORDS.items():
            self.matcher.add(key, [self.nlp.make_doc(compact(w)) for w in words if compact(w)])
        self._choices = [(key, lab) for key, labs in self.full_labels.items() for lab in set(labs) if lab]
        for key, variants in (learned or {}).items():
            for v in variants:
                self.add_variant(key, v)

    def add_variant(self, key: str, text: str) -> None:
        """A reviewer-confirmed spelling of a row label (exact phrase from then on)."""
        c = compact(text)
        if c and key in self.rows:
            self.matcher.add(key, [self.nlp.make_doc(c)])
            self.full_labels[key].append(c)
            self._choices.append((key, c))
            self._memo.clear()

    def match(self, text: str) -> list[LabelHit]:
        """Every label/header found in ``text``, left to right (memoised: labels repeat)."""
        c = compact(text)
        if not c:
            return []
        hit = self._memo.get(c)
        if hit is None:
            hit = self._match(c)
            if len(self._memo) > 50_000:
                self._memo.clear()
            self._memo[c] = hit
        return hit

    def _match(self, c: str) -> list[LabelHit]:
        doc = self.nlp.make_doc(c)
        spans = filter_spans([Span(doc, s, e, label=mid) for mid, s, e in self.matcher(doc)])
        hits: list[LabelHit] = []
        if spans:
            spans = sorted(spans, key=lambda sp: sp.start)
            for sp in spans:
                if not hits or hits[-1].key != sp.label_:   # two keywords of one label: one hit
                    hits.append(LabelHit(sp.label_, 1.0, "keyword", c))
            return hits
        fuzzy = self.fuzzy(c)
        return [fuzzy] if fuzzy else []

    def fuzzy(self, c: str) -> LabelHit | None:
        if len(c) < 4 or len(c) > FUZZY_MAX_CHARS:
            return None
        best: dict[str, float] = {}
        for key, lab in self._choices:
            s = fuzz.ratio(c, lab)
            if len(c) >= 5 and len(lab) > len(c):        # a label cut by a line break: compare the prefix
                s = max(s, fuzz.ratio(c, lab[:len(c)]) - 3)
            if s > best.get(key, 0):
                best[key] = s
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        if not ranked or ranked[0][1] < FUZZY_MIN:
            return None
        if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < FUZZY_MARGIN:
            return None
        return LabelHit(ranked[0][0], ranked[0][1] / 100.0, "fuzzy", c)


def _strip_numbering(c: str) -> str:
    import re
    return re.sub(r"^(?:[一二三四五六七八九十]+|\d)", "", c)


def rules_file_key(path: str | None) -> tuple[str | None, float]:
    """Cache key of the per-installation rule file: a new version (mtime) rebuilds the matcher."""
    if not path:
        return None, 0.0
    try:
        return path, Path(path).stat().st_mtime
    except OSError:
        return path, 0.0


def matcher_for(rules_file: str | None) -> "LabelMatcher":
    return default_matcher(*rules_file_key(rules_file))


@lru_cache(maxsize=4)
def default_matcher(rules_file: str | None = None, mtime: float = 0.0) -> LabelMatcher:
    """One compiled matcher per (rule file, version); ``mtime`` is only part of the cache key."""
    learned: dict[str, list[str]] = {}
    if rules_file:
        try:
            learned = json.loads(Path(rules_file).read_text("utf-8")).get("variants", {})
        except (OSError, ValueError):
            learned = {}
    return LabelMatcher(learned)
