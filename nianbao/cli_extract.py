"""``nianbao extract FILE... [--json] [--out FILE]``: the in-process pipeline on files."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from extractors.pipeline import extract_path
from models.options import ExtractOptions


def _expand(paths: list[Path]) -> list[Path]:
    """Files as given; a directory stands for the files directly inside it (sorted)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith(".")))
        else:
            out.append(p)
    return out


def extract(
    files: list[Path] = typer.Argument(..., help="Report files (text, markdown, HTML, PDF, DOCX, images) or folders."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per document (JSON Lines)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the JSON Lines to this file instead of stdout."),
) -> None:
    """Extract the canonical fields of each report; a failed file is reported and the batch goes on."""
    options = ExtractOptions()
    err = Console(stderr=True)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)          # piped output: do not cut the table at 80 columns
    sink = open(out, "w", encoding="utf-8") if out else None
    failed = 0
    rows = []
    try:
        for path in _expand(files):
            result = extract_path(path, options)
            if result.status == "failed":
                failed += 1
                err.print(f"[red]failed[/red] {path}: {result.error}", highlight=False)
            if as_json or sink:
                line = json.dumps(result.to_dict(), ensure_ascii=False)
                (sink.write(line + "\n") if sink else sys.stdout.write(line + "\n"))
            if not as_json:
                rows.append(result)
    finally:
        if sink:
            sink.close()
    if not as_json:
        table = Table(title="nianbao extract")
        for col in ("file", "status", "agency", "year", "form", "fields", "review", "broken relations", "ms"):
            table.add_column(col)
        for r in rows:
            broken = sum(1 for c in r.checks if c.ok is False)
            table.add_row(Path(r.source).name, r.status, r.meta.agency or "", str(r.meta.year or ""),
                          r.meta.template or "", str(len(r.fields)), str(r.review_count), str(broken),
                          f"{(r.seconds or 0) * 1000:.0f}")
        console.print(table)
        for r in rows:
            flagged = [(k, f) for k, f in r.fields.items() if f.review]
            if flagged:
                console.print(f"[bold]{Path(r.source).name}[/bold]: {len(flagged)} field(s) to review")
                for k, f in flagged[:12]:
                    console.print(f"  {k} = {f.value!r}  ({'; '.join(f.reasons)})", highlight=False)
                if len(flagged) > 12:
                    console.print(f"  … and {len(flagged) - 12} more (use --json for all)")
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
