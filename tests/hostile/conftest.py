"""Hostile-input fixtures: the generated corpus (built once per session into a temp dir) and the
outcome table printed at the end of the run (helpers in ``hostilekit.py``)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostilekit import OUTCOMES, build  # noqa: E402


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """The hostile corpus in ``<tmp>/corpus``; ``<tmp>/canary`` is the zip-slip target next to it."""
    base = tmp_path_factory.mktemp("hostile")
    (base / "canary").mkdir()
    (base / "canary" / "keep.txt").write_text("canary\n")
    return build(base / "corpus", bomb_bytes=512 * 2**20)


def pytest_terminal_summary(terminalreporter):
    if not OUTCOMES:
        return
    tr = terminalreporter
    tr.section("hostile inputs: path / input -> status, reason, seconds, peak RSS")
    for r in sorted(OUTCOMES, key=lambda r: (r["path"], r["input"])):
        tr.write_line(f"{r['path']:<8} {r['input']:<22} {r['status']:<13} {r['seconds']:>6.2f}s "
                      f"{r['rss']:>5} MiB  {r['reason']}")
    out = os.environ.get("NIANBAO_HOSTILE_TABLE")
    if out:
        Path(out).write_text(json.dumps(OUTCOMES, ensure_ascii=False, indent=1))


