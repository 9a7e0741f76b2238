"""Service commands: ``nianbao serve``, ``nianbao worker``, ``nianbao db upgrade``,
``nianbao token create``, ``nianbao sweep``. Configured by the environment (docs/service.md):
NIANBAO_DATABASE_URL, NIANBAO_BROKER_URL, NIANBAO_ADMIN_TOKEN, NIANBAO_HOME."""
from __future__ import annotations

import os
import sys
from typing import Optional

import typer

db_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Database schema.")
token_app = typer.Typer(add_completion=False, no_args_is_help=True, help="API tokens.")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", help="Uvicorn worker processes."),
) -> None:
    """Run the HTTP API (uvicorn); migrates the database first."""
    import uvicorn
    from worker.settings import settings
    from worker.store import upgrade
    upgrade(settings().database_url)
    uvicorn.run("worker.api:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", proxy_headers=True)


def worker(
    concurrency: Optional[int] = typer.Option(None, "--concurrency", "-c",
                                              help="Worker processes (default: number of CPUs)."),
    loglevel: str = typer.Option("INFO", "--loglevel", "-l"),
    queue: Optional[str] = typer.Option(None, "--queue", "-Q", help="Queue (default NIANBAO_QUEUE or nianbao)."),
    hostname: Optional[str] = typer.Option(None, "--hostname", "-n", help="Celery node name."),
    beat: bool = typer.Option(False, "--beat", "-B", help="Also run celery beat (the periodic sweep) in this worker."),
) -> None:
    """Run a Celery worker with the reliability flags (late acks, prefetch 1, -Ofair, recycling)."""
    from worker.settings import settings
    from worker.store import upgrade
    s = settings()
    upgrade(s.database_url)
    argv = [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel", loglevel,
            "-Ofair", "--prefetch-multiplier", "1", "-Q", queue or s.queue,
            "--max-tasks-per-child", str(s.max_tasks_per_child),
            "--max-memory-per-child", str(s.max_memory_per_child_kib)]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    if beat:
        s.home.mkdir(parents=True, exist_ok=True)
        argv += ["--beat", "--schedule", str(s.home / "celerybeat-schedule")]
    sys.stdout.flush()
    os.execv(sys.executable, argv)   # celery owns the process: signals reach it directly


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Create or migrate the database named by NIANBAO_DATABASE_URL (default: embedded SQLite)."""
    from worker.settings import settings
    from worker.store import upgrade
    url = settings().database_url
    upgrade(url, revision)
    typer.echo(f"database at {_redact(url)} is at {revision}")


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., "--name", help="The user the token belongs to (created if new)."),
    role: str = typer.Option("reviewer", "--role", help="reviewer or admin."),
) -> None:
    """Create a bearer token and print it once (only its hash is stored)."""
    if role not in ("reviewer", "admin"):
        typer.echo("--role must be reviewer or admin.", err=True)
        raise typer.Exit(2)
    from worker.settings import settings
    from worker.store import Store, upgrade
    upgrade(settings().database_url)
    typer.echo(Store.from_settings().create_token(name, role))


@token_app.command("revoke")
def token_revoke(name: str = typer.Option(..., "--name")) -> None:
    """Revoke every token of a user."""
    from worker.store import Store
    typer.echo(f"revoked {Store.from_settings().revoke_tokens(name)} token(s) of {name}")


def sweep() -> None:
    """Re-enqueue documents stuck in queued/running past their deadline (workers also do this
    every NIANBAO_SWEEP_SECONDS)."""
    from worker.jobs import sweep as run_sweep
    out = run_sweep()
    typer.echo(f"stuck {out['stuck']}, re-enqueued {out['requeued']}"
               + (" (the broker had restarted: every queued document re-sent)" if out["broker_reset"] else ""))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.command("sweep")(sweep)
    app.add_typer(db_app, name="db")
    app.add_typer(token_app, name="token")
