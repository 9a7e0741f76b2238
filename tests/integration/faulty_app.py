"""The real Celery app with test-only faults injected by file name (never shipped):

- a file named ``slow-*`` sleeps ``NIANBAO_TEST_SLOW_SECONDS`` before extracting (so a test
  can kill the worker mid-document);
- a file named ``poison-*`` kills its worker process (SIGKILL) every time it is extracted.

Run as ``celery -A faulty_app worker`` with this directory on PYTHONPATH.
"""
from __future__ import annotations

import os
import signal
import time

from worker import jobs
from worker.celery_app import app  # noqa: F401  (celery -A finds it here)
import worker.tasks  # noqa: F401  (registers the tasks)

_real_extract = jobs.extract_whole


def _faulty_extract(data, filename, options):
    name = os.path.basename(filename)
    if name.startswith("slow-"):
        time.sleep(float(os.environ.get("NIANBAO_TEST_SLOW_SECONDS", "5")))
    if name.startswith("poison-"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _real_extract(data, filename, options)


jobs.extract_whole = _faulty_extract
