"""One document's wall-time budget (``Limits.max_seconds_per_document``), checked where work loops.

``extract_bytes`` opens the budget (``budget(seconds)``); the loops that can run long for one
input (PDF pages, image frames, OCR recogniser batches) call ``check(where)``, which raises the
``timeout`` InputError once the budget is spent. Outside a budget ``check`` does nothing, so a
reader called on its own (tests, the worker's per-page fan-out under Celery time limits) runs as
before. A ContextVar keeps concurrent documents (threads) apart.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from models.errors import TIMEOUT, InputError

_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("nianbao_deadline", default=None)


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Run the body under a budget of ``seconds`` (wall time); nested budgets keep the earlier end."""
    now = time.monotonic()
    outer = _DEADLINE.get()
    end = now + seconds
    if outer is not None and outer[0] < end:
        end, seconds = outer
    token = _DEADLINE.set((end, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check(where: str) -> None:
    """Raise the ``timeout`` InputError when the current budget is spent."""
    d = _DEADLINE.get()
    if d is not None and time.monotonic() > d[0]:
        raise InputError(TIMEOUT, f"Processing stopped after {d[1]:.0f} s ({where}); split the file "
                         "or raise Limits.max_seconds_per_document.")


def remaining() -> float | None:
    d = _DEADLINE.get()
    return None if d is None else d[0] - time.monotonic()
