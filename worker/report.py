"""``nianbao report``: one self-contained HTML page about the store (charts as inline SVG).

Sections: documents by status; review load by reason (open items); most-flagged fields;
relation violations (within documents, by relation; across the collection, each listed);
per-organ time series of applications received (``apply.new.total``) and the outcome mix of
each year; archive batches and what they skipped. No CDN, no scripts: it opens offline and
prints.

``gather(store)`` collects plain data (testable); ``render(data)`` turns it into HTML;
``write_report`` does both.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from markupsafe import Markup, escape
from sqlalchemy import func, select

from models.tables import Batch, BatchItem, Document, Extraction, Field, ReviewItem

from .collection import ReportValues, find_violations, group_by_organ_year, load_reports
from .store import Store

# Outcome groups of table 2 (本年度办理结果), summed over the 总计 column.
OUTCOMES = (
    ("granted", "予以公开", ("apply.granted.total",)),
    ("partial", "部分公开", ("apply.partial.total",)),
    ("denied", "不予公开", ("apply.denied.",)),
    ("unable", "无法提供", ("apply.unable.",)),
    ("not_processed", "不予处理", ("apply.not_processed.",)),
    ("other", "其他处理", ("apply.other.",)),
)
OUTCOME_COLORS = {"granted": "#2e7d32", "partial": "#81c784", "denied": "#c62828", "unable": "#ef6c00",
                  "not_processed": "#8d6e63", "other": "#90a4ae"}
STATUS_COLORS = {"extracted": "#2e7d32", "needs_review": "#f9a825", "failed": "#c62828",
                 "queued": "#90a4ae", "running": "#1e88e5"}
MAX_ORGANS = 60
MAX_VIOLATIONS_LISTED = 300


# --------------------------------------------------------------------------- data

def reason_group(reason: str) -> list[str]:
    """Short reason keys of one review item: each ``;``-part, without its numbers and detail
    (``relation balance violated: new + … = 3 but …`` -> ``relation balance violated``)."""
    out = []
    for part in (reason or "").split(";"):
        part = part.strip()
        if not part:
            continue
        part = re.split(r"[:：(（]", part, maxsplit=1)[0]
        part = re.sub(r"\d+(?:\.\d+)?", "N", part).strip()
        out.append(part[:80] or "other")
    return out or ["(no reason given)"]


def outcome_mix(values: dict[str, Any]) -> dict[str, float]:
    """Applications handled this year by outcome group (总计 column), blanks as 0."""
    out = {}
    for name, _label, prefixes in OUTCOMES:
        total = 0.0
        for k, v in values.items():
            if v is None or not k.endswith(".total"):
                continue
            if any(k == p if not p.endswith(".") else k.startswith(p) for p in prefixes):
                total += float(v)
        out[name] = total
    return out


@dataclass(slots=True)
class OrganSeries:
    organ: str
    reports: int
    years: list[int]
    received: list[float | None]              # apply.new.total per year
    mix: list[dict[str, float]]               # outcome mix per year
    duplicated_years: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ReportData:
    generated_at: str
    database: str
    batch_id: int | None
    status_counts: dict[str, int]
    documents: int
    open_items_by_kind: dict[str, int]
    review_reasons: list[tuple[str, int]]
    flagged_fields: list[tuple[str, int]]
    flagged_field_total: int
    field_total: int
    relation_counts: list[tuple[str, int, int]]      # relation, violated, evaluated
    collection: list[dict[str, Any]]
    collection_counts: dict[str, int]
    organs: list[OrganSeries]
    organs_total: int
    unknown_organ_year: int
    batches: list[dict[str, Any]]
    junk_reasons: list[tuple[str, int]]
    failures: list[tuple[str, int]]


def _scope_docs(batch_id: int | None):
    if batch_id is None:
        return None
    return select(BatchItem.document_id).where(BatchItem.batch_id == batch_id, BatchItem.document_id.is_not(None))


def gather(store: Store, batch_id: int | None = None) -> ReportData:
    """Everything the page shows, as plain values."""
    scope = _scope_docs(batch_id)
    with store.session() as s:
        q = select(Document.status, func.count()).group_by(Document.status)
        if scope is not None:
            q = q.where(Document.id.in_(scope))
        status_counts = {st: n for st, n in s.execute(q)}

        live = ReviewItem.state.in_(("open", "claimed"))
        q = select(ReviewItem.kind, func.count()).where(live).group_by(ReviewItem.kind)
        if scope is not None:
            q = q.where(ReviewItem.document_id.in_(scope))
        open_by_kind = {k: n for k, n in s.execute(q)}

        reasons: Counter = Counter()
        q = select(ReviewItem.kind, ReviewItem.reason, ReviewItem.details).where(live)
        if scope is not None:
            q = q.where(ReviewItem.document_id.in_(scope))
        for kind, reason, details in s.execute(q).yield_per(1000):
            if kind == "collection":
                reasons["collection: " + str((details or {}).get("check", "check")).replace("_", " ")] += 1
            else:
                for r in reason_group(reason):
                    reasons[r] += 1

        current = select(Document.current_extraction_id).where(Document.current_extraction_id.is_not(None))
        if scope is not None:
            current = current.where(Document.id.in_(scope))
        flagged = list(s.execute(select(Field.key, func.count()).where(
            Field.extraction_id.in_(current), Field.review.is_(True)).group_by(Field.key)
            .order_by(func.count().desc(), Field.key).limit(25)))
        flagged_total = s.scalar(select(func.count()).select_from(Field).where(
            Field.extraction_id.in_(current), Field.review.is_(True))) or 0
        field_total = s.scalar(select(func.count()).select_from(Field).where(Field.extraction_id.in_(current))) or 0

        rel: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (checks,) in s.execute(select(Extraction.checks).where(Extraction.id.in_(current))).yield_per(500):
            for c in checks or []:
                r = rel[c.get("relation", "?")]
                if c.get("ok") is not None:
                    r[1] += 1
                if c.get("ok") is False:
                    r[0] += 1

        failures: Counter = Counter()
        q = select(Document.error).where(Document.status == "failed")
        if scope is not None:
            q = q.where(Document.id.in_(scope))
        for (err,) in s.execute(q):
            failures[err or "(no message)"] += 1

        bq = select(Batch).order_by(Batch.id.desc()).limit(20)
        if batch_id is not None:
            bq = select(Batch).where(Batch.id == batch_id)
        batches = []
        junk: Counter = Counter()
        for b in s.scalars(bq):
            counts = {st: n for st, n in s.execute(select(BatchItem.state, func.count()).where(
                BatchItem.batch_id == b.id).group_by(BatchItem.state))}
            batches.append({"id": b.id, "name": b.name, "roots": b.roots, "state": b.state,
                            "created_at": b.created_at.strftime("%Y-%m-%d %H:%M") if b.created_at else "",
                            "counts": counts, "total": sum(counts.values())})
            for (err,) in s.execute(select(BatchItem.error).where(BatchItem.batch_id == b.id,
                                                                  BatchItem.state == "junk")):
                junk[err or "not a report"] += 1

    reports = load_reports(store, batch_id)
    violations = find_violations(load_reports(store)) if batch_id is None else [
        v for v in find_violations(load_reports(store)) if v.document_id in {r.document_id for r in reports}]
    collection = [{"kind": v.kind, "organ": v.organ, "year": v.year, "document_id": v.document_id,
                   "field_key": v.field_key, "reason": v.reason} for v in violations]
    organs, total_organs, unknown = organ_series(reports)
    return ReportData(
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        database=_redact(store.url), batch_id=batch_id, status_counts=status_counts,
        documents=sum(status_counts.values()), open_items_by_kind=open_by_kind,
        review_reasons=reasons.most_common(20), flagged_fields=[(k, n) for k, n in flagged],
        flagged_field_total=flagged_total, field_total=field_total,
        relation_counts=sorted(((k, v[0], v[1]) for k, v in rel.items()), key=lambda t: (-t[1], t[0])),
        collection=collection, collection_counts=dict(Counter(v.kind for v in violations)),
        organs=organs, organs_total=total_organs, unknown_organ_year=unknown,
        batches=batches, junk_reasons=junk.most_common(12), failures=failures.most_common(12))


def organ_series(reports: Sequence[ReportValues]) -> tuple[list[OrganSeries], int, int]:
    """Per organ (the most-reported first, at most ``MAX_ORGANS``): received and outcome mix by
    year. A year with several reports uses the first (lowest document id) and is marked."""
    grouped = group_by_organ_year(reports)
    unknown = sum(1 for r in reports if not (r.agency and r.year))
    out = []
    for organ, years in grouped.items():
        ys = sorted(years)
        firsts = [min(years[y], key=lambda r: r.document_id) for y in ys]
        out.append(OrganSeries(organ, sum(len(v) for v in years.values()), ys,
                               [r.values.get("apply.new.total") for r in firsts],
                               [outcome_mix(r.values) for r in firsts],
                               [y for y in ys if len(years[y]) > 1]))
    out.sort(key=lambda o: (-len(o.years), -o.reports, o.organ))
    return out[:MAX_ORGANS], len(out), unknown


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


# --------------------------------------------------------------------------- SVG charts

def svg_hbars(items: Sequence[tuple[str, float]], *, width: int = 640, bar_h: int = 18, label_w: int = 260,
              color: str = "#1e88e5") -> Markup:
    """Horizontal bars with labels and values."""
    if not items:
        return Markup('<p class="muted">nothing to show</p>')
    top = max(v for _, v in items) or 1
    h = len(items) * (bar_h + 6) + 4
    span = width - label_w - 60
    parts = [f'<svg class="chart" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img">']
    for i, (label, v) in enumerate(items):
        y = 2 + i * (bar_h + 6)
        w = max(1.0, span * v / top)
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end">{escape(_short(label, 38))}'
                     f'<title>{escape(label)}</title></text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}" rx="2"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 5}">{_num(v)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def svg_stacked(total: dict[str, int], colors: dict[str, str], *, width: int = 640, height: int = 26) -> Markup:
    """One 100% bar split by category, with a legend."""
    n = sum(total.values())
    if not n:
        return Markup('<p class="muted">no documents</p>')
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height + 22}" width="{width}" height="{height + 22}">']
    x = 0.0
    lx = 0
    for k, v in total.items():
        w = width * v / n
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colors.get(k, "#999")}">'
                     f'<title>{escape(k)}: {v}</title></rect>')
        x += w
        parts.append(f'<rect x="{lx}" y="{height + 8}" width="10" height="10" fill="{colors.get(k, "#999")}"/>'
                     f'<text x="{lx + 14}" y="{height + 17}">{escape(k)} {v}</text>')
        lx += 28 + 8 * (len(k) + len(str(v)))
    parts.append("</svg>")
    return Markup("".join(parts))


def svg_organ(series: OrganSeries, *, width: int = 300, height: int = 120) -> Markup:
    """Bars of the outcome mix per year (stacked, absolute) with a line of applications received."""
    years = series.years
    pad_l, pad_b, pad_t = 34, 18, 8
    plot_w, plot_h = width - pad_l - 6, height - pad_b - pad_t
    handled = [sum(m.values()) for m in series.mix]
    received = [v for v in series.received if v is not None]
    top = max([*handled, *received, 1])
    step = plot_w / max(len(years), 1)
    bw = min(28.0, step * 0.6)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 4}" y2="{pad_t + plot_h}" stroke="#999"/>',
             f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end" class="axis">{_num(top)}</text>',
             f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" text-anchor="end" class="axis">0</text>']
    pts = []
    for i, (year, mix) in enumerate(zip(years, series.mix)):
        cx = pad_l + step * i + step / 2
        y = pad_t + plot_h
        for name, _label, _p in OUTCOMES:
            v = mix.get(name, 0.0)
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            parts.append(f'<rect x="{cx - bw / 2:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                         f'fill="{OUTCOME_COLORS[name]}"><title>{year} {escape(_label)}: {_num(v)}</title></rect>')
        parts.append(f'<text x="{cx:.1f}" y="{height - 4}" text-anchor="middle" class="axis">{year}'
                     f'{"*" if year in series.duplicated_years else ""}</text>')
        r = series.received[i]
        if r is not None:
            pts.append((cx, pad_t + plot_h - plot_h * float(r) / top, year, r))
    if pts:
        parts.append('<polyline fill="none" stroke="#1e88e5" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts) + '"/>')
        for x, y, year, r in pts:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1e88e5">'
                         f'<title>{year} 本年新收申请 {_num(r)}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _num(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


# --------------------------------------------------------------------------- HTML

def render(data: ReportData) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent)), autoescape=select_autoescape(["html"]))
    env.filters["num"] = _num
    template = env.get_template("report.html")
    return template.render(
        d=data,
        status_chart=svg_stacked(data.status_counts, STATUS_COLORS),
        reasons_chart=svg_hbars(data.review_reasons, color="#f9a825"),
        fields_chart=svg_hbars(data.flagged_fields, color="#c62828"),
        relations_chart=svg_hbars([(r, v) for r, v, _ in data.relation_counts if v], color="#6a1b9a"),
        organ_charts=[(o, svg_organ(o)) for o in data.organs],
        outcomes=[(name, label, OUTCOME_COLORS[name]) for name, label, _ in OUTCOMES],
        max_listed=MAX_VIOLATIONS_LISTED,
    )


def write_report(store: Store, out: Path | str, batch_id: int | None = None) -> ReportData:
    data = gather(store, batch_id)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data), encoding="utf-8")
    return data
