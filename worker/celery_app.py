"""The Celery application: Redis broker, no result backend (results live in the store).

Reliability settings and why:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its
  task finished; a worker killed mid-task leaves it to be delivered again.
- ``visibility_timeout`` (Redis): how long an unacknowledged message waits before Redis hands it
  to another worker; longer than the slowest document, or a slow document runs twice.
- ``worker_prefetch_multiplier = 1`` with ``-Ofair``: a worker takes one long OCR task at a time.
- ``worker_max_tasks_per_child`` / ``worker_max_memory_per_child``: OCR engines grow; recycle.
- No chord: the join after per-page tasks is a compare-and-set on the pages-done count in the
  database (``Store.claim_join``), and a sweeper re-enqueues anything whose message was lost
  (a killed worker, a Redis restart: Redis here keeps nothing on disk).
"""
from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from .settings import settings


def make_app() -> Celery:
    s = settings()
    app = Celery("nianbao", broker=s.broker_url, include=["worker.tasks"])
    app.conf.update(
        task_default_queue=s.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=s.max_tasks_per_child,
        worker_max_memory_per_child=s.max_memory_per_child_kib,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": s.visibility_timeout},
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5,
                                   "interval_max": 2},
        worker_send_task_events=False,
        beat_schedule={"nianbao-sweep": {"task": "nianbao.sweep", "schedule": max(s.sweep_seconds, 5.0)}},
    )
    return app


app = make_app()


@worker_process_init.connect
def _fresh_connections(**_kw) -> None:
    """A forked pool process must not share the parent's database connections."""
    from . import store
    if store._default is not None:
        store._default.dispose()


@worker_ready.connect
def _start_sweeper(sender=None, **_kw) -> None:
    """Each worker sweeps every ``NIANBAO_SWEEP_SECONDS`` (idempotent: several workers sweeping
    at once only send duplicate messages, which the claim turns into no-ops)."""
    from .jobs import start_sweeper_thread
    start_sweeper_thread()


@worker_shutdown.connect
def _stop_sweeper(**_kw) -> None:
    from .jobs import stop_sweeper_thread
    stop_sweeper_thread()
