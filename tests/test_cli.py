"""The command line: JSON Lines per the contract, summary table, errors on stderr, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys

from testkit import SEED


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nianbao.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_cli_extract_json_lines_and_failed_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    out = tmp_path / "out.jsonl"
    p = _run("extract", str(SEED), str(empty), "--json", "--out", str(out))
    assert p.returncode == 1                              # some document failed
    assert "empty.txt" in p.stderr and "empty" in p.stderr and "Traceback" not in p.stderr
    docs = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [d["status"] for d in docs] == ["needs_review", "failed"]
    seed = docs[0]
    assert set(seed) >= {"source", "sha256", "status", "error", "meta", "fields", "checks"}
    assert seed["meta"] == {"agency": "洛龙区民政局", "year": 2020, "template": "2019"}
    f = seed["fields"]["appeal.review.upheld"]
    assert set(f) == {"value", "confidence", "review", "reasons", "page", "bbox", "text"}
    assert f["review"] is True and f["value"] is None


def test_cli_extract_summary_table_exit_zero():
    p = _run("extract", str(SEED))
    assert p.returncode == 0
    assert "洛龙区民政局" in p.stdout and "needs_review" in p.stdout
    assert "appeal.review.total" in p.stdout
