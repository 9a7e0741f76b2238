"""Result types that serialize exactly to ``shared/spec/output.md``."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .cells import BBox


@dataclass(slots=True)
class FieldResult:
    value: int | float | None
    confidence: float
    review: bool
    reasons: list[str] = field(default_factory=list)
    page: int | None = None
    bbox: BBox | None = None
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "confidence": round(float(self.confidence), 3),
            "review": bool(self.review),
            "reasons": list(self.reasons),
            "page": self.page,
            "bbox": [round(float(v), 1) for v in self.bbox] if self.bbox else None,
            "text": self.text,
        }


@dataclass(slots=True)
class Check:
    relation: str
    scope: str
    ok: bool | None             # None: could not be evaluated (a cell unknown)
    keys: list[str]
    detail: str = ""
    lhs_count: int = 1          # keys[:lhs_count] sum to keys[lhs_count:] (not serialized)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"relation": self.relation}
        d["row" if self.relation in ("row_total", "org_subtotal") else
          "group" if self.relation == "appeal_total" else "column"] = self.scope
        d.update({"ok": self.ok, "keys": list(self.keys)})
        if self.detail:
            d["detail"] = self.detail
        return d


@dataclass(slots=True)
class Meta:
    agency: str | None = None
    year: int | None = None
    template: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"agency": self.agency, "year": self.year, "template": self.template}


@dataclass(slots=True)
class ExtractionResult:
    source: str
    sha256: str
    status: str                      # "extracted" | "needs_review" | "failed"
    error: str | None = None
    error_code: str | None = None
    meta: Meta = field(default_factory=Meta)
    fields: dict[str, FieldResult] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    format: str | None = None
    pages: int | None = None
    seconds: float | None = None

    @classmethod
    def failed(cls, source: str, sha256: str, code: str, message: str) -> "ExtractionResult":
        return cls(source=source, sha256=sha256, status="failed", error=message, error_code=code)

    @property
    def review_count(self) -> int:
        return sum(1 for f in self.fields.values() if f.review)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "source": self.source,
            "sha256": self.sha256,
            "status": self.status,
            "error": self.error,
            "meta": self.meta.to_dict(),
            "fields": {k: f.to_dict() for k, f in self.fields.items()},
            "checks": [c.to_dict() for c in self.checks],
        }
        if self.error_code:
            d["error_code"] = self.error_code
        if self.format:
            d["format"] = self.format
        if self.pages is not None:
            d["pages"] = self.pages
        return d


def clean_number(v: float) -> int | float:
    """An integral float becomes an int (JSON ``0`` not ``0.0``)."""
    if isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 2**53:
        return int(v)
    return v
