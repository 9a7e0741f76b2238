"""``nianbao archive``, ``nianbao export``, ``nianbao report``: bulk archival and datasets (issue 6).

The store is the one the service uses: ``NIANBAO_DATABASE_URL`` or the embedded SQLite file
under ``NIANBAO_HOME`` (see ``worker/settings.py``). Each command brings the schema up to date
first, so a fresh machine needs no separate setup step.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, Task,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text


def _store():
    """The configured store, migrated to the current schema."""
    from worker.settings import from_env
    from worker.store import Store, upgrade
    s = from_env()
    upgrade(s.database_url)
    return Store.from_settings(s)


class _RateColumn(ProgressColumn):
    """Reports per minute over Rich's recent-speed window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- /min" if speed is None else f"{speed * 60:,.0f} /min", style="cyan")


def archive(
    paths: list[Path] = typer.Argument(..., help="Folders, zip files or single files to archive."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1,
                                          help="Worker processes (default: CPU count; 1 = in this process)."),
    queue: bool = typer.Option(False, "--queue", help="Enqueue to the Celery service instead of a local pool."),
    name: str = typer.Option("", "--name", help="A label for this batch (shown in the report)."),
    checks: bool = typer.Option(True, "--checks/--no-checks",
                                help="Run the collection checks (across years, duplicates, organ names) at the end."),
) -> None:
    """Digitize every report under PATHS into the store. Resumable: rerun the same command after
    Ctrl-C or a crash and it continues where it stopped; no file is processed twice."""
    from worker.archive import ArchiveInterrupted, QueueUnavailable, run_archive

    err = Console(stderr=True)
    for p in paths:
        if not p.exists():
            err.print(f"[red]error[/red] {p} does not exist; check the path.", highlight=False)
            raise typer.Exit(2)
    try:
        store = _store()
    except Exception as e:
        err.print(f"[red]error[/red] cannot open the store ({type(e).__name__}: {e}); "
                  "check NIANBAO_DATABASE_URL / NIANBAO_HOME.", highlight=False)
        raise typer.Exit(2)
    enqueue = None
    if queue:
        from worker.archive import queue_enqueuer
        try:
            enqueue = queue_enqueuer()
        except RuntimeError as e:
            err.print(f"[red]error[/red] {e}", highlight=False)
            raise typer.Exit(2)

    tally = {"done": 0, "duplicate": 0, "junk": 0, "failed": 0}
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        _RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=err, transient=False)
    task_id = None

    def describe() -> str:
        return (f"[green]{tally['done']}[/] done · {tally['duplicate']} dup · "
                f"[yellow]{tally['junk']}[/] junk · [red]{tally['failed']}[/] failed")

    def on_start(total: int, already: int) -> None:
        nonlocal task_id
        if already:
            err.print(f"resuming: {already} of {total} files already handled", highlight=False)
        task_id = progress.add_task(describe(), total=total, completed=already)

    def on_item(key: str, state: str) -> None:
        tally[state] = tally.get(state, 0) + 1
        if task_id is not None:
            progress.update(task_id, advance=1, description=describe())

    try:
        with progress:
            summary = run_archive(store, paths, workers=workers, queue=queue, name=name,
                                  options=_options(), on_start=on_start, on_item=on_item, enqueue=enqueue)
    except QueueUnavailable as e:
        err.print(f"[red]error[/red] {e}", highlight=False)
        raise typer.Exit(2)
    except ArchiveInterrupted as e:
        s = e.summary
        err.print(f"[yellow]interrupted[/yellow]: batch {s.batch_id} saved ({s.counts.get('pending', 0)} files "
                  "left); rerun the same command to resume.", highlight=False)
        raise typer.Exit(130)

    table = Table(title=f"nianbao archive — batch {summary.batch_id}" + (" (resumed)" if summary.resumed else ""))
    for col in ("files", "done", "duplicate", "junk", "failed", "extracted now", "reports/min", "seconds"):
        table.add_column(col, justify="right")
    c = summary.counts
    table.add_row(str(summary.total), str(c.get("done", 0)), str(c.get("duplicate", 0)), str(c.get("junk", 0)),
                  str(c.get("failed", 0)), str(summary.extracted_now), f"{summary.per_minute:,.0f}",
                  f"{summary.seconds:.1f}")
    Console().print(table)
    if summary.junk_reasons:
        err.print("[bold]skipped as not report inputs[/bold]:", highlight=False)
        for reason, n in summary.junk_reasons.most_common(8):
            err.print(f"  {n:>5} × {reason}", highlight=False)
    failed = store.batch_items(summary.batch_id, "failed")
    for item in failed[:10]:
        err.print(f"[red]failed[/red] {item['path']}: {item['error']}", highlight=False)
    if len(failed) > 10:
        err.print(f"  … and {len(failed) - 10} more (see `nianbao report`)", highlight=False)
    if checks:
        from worker.collection import run_collection_checks
        found = run_collection_checks(store)
        err.print(f"collection checks: {found.summary_line()}", highlight=False)


class ExportFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"
    xlsx = "xlsx"


class Layout(str, Enum):
    wide = "wide"
    long = "long"


def export(
    out: Path = typer.Option(..., "--out", "-o", help="File to write."),
    fmt: Optional[ExportFormat] = typer.Option(None, "--format", "-f",
                                               help="csv | jsonl | parquet | xlsx (default: from --out's extension)."),
    layout: Layout = typer.Option(Layout.wide, "--layout",
                                  help="wide: one row per report; long: one row per report and field."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Only the documents of this archive batch."),
    status: Optional[list[str]] = typer.Option(None, "--status",
                                               help="Only documents with this status (repeatable)."),
) -> None:
    """Write the store's current values as a dataset (with each field's review state and reviewer)."""
    from worker.export import export_results
    err = Console(stderr=True)
    chosen = fmt.value if fmt else out.suffix.lower().lstrip(".")
    if chosen not in {f.value for f in ExportFormat}:
        err.print(f"[red]error[/red] cannot tell the format from {out.name}; pass --format csv|jsonl|parquet|xlsx.",
                  highlight=False)
        raise typer.Exit(2)
    store = _store()
    n = export_results(store, out, chosen, layout.value, batch_id=batch, statuses=status or None)
    err.print(f"wrote {n} row(s) to {out} ({chosen}, {layout.value})", highlight=False)


def report(
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Only the documents of this archive batch."),
) -> None:
    """An HTML summary of the store: status, review load, most-flagged fields, per-organ trends,
    relation violations. Self-contained (inline SVG, no internet)."""
    from worker.report import write_report
    store = _store()
    write_report(store, out, batch_id=batch)
    Console(stderr=True).print(f"wrote {out}", highlight=False)


def _options():
    """Extraction options with the installation's learned label rules (written by reviewers)."""
    from models.options import ExtractOptions
    from worker.review import review_settings
    return ExtractOptions(rules_file=str(review_settings().rules_file))


def register(app: typer.Typer) -> None:
    app.command("archive")(archive)
    app.command("export")(export)
    app.command("report")(report)
