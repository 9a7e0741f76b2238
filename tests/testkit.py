"""Paths shared by the tests (importable from every test directory; tests/ is on sys.path)."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SEED = SAMPLES / "luolong-minzheng-2020.txt"


def devset_dir() -> Path | None:
    env = os.environ.get("NIANBAO_DEVSET")
    p = Path(env) if env else (REPO / ".." / "shared" / "devset").resolve()
    return p if (p / "labels").is_dir() else None
