"""Service mode: the store, the Celery app and tasks, the HTTP API.

``import worker`` stays cheap (the CLI imports it): the Celery app is built on first access of
``worker.app`` / ``worker.celery``, which is what ``celery -A worker worker`` asks for.
"""
from __future__ import annotations

from typing import Any

__all__ = ["app", "celery"]


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from .celery_app import app
        return app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
