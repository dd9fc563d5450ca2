"""Prometheus metrics. This package's own module imports nothing of prometheus_client, on purpose.

    metrics            where prometheus-client's multiprocess mode keeps its files (prepare(), remove())
    metrics.instruments   the counters and histograms (imports prometheus_client)
    metrics.exposition    the text format of a scrape, with the gauges read from Redis

prometheus-client reads PROMETHEUS_MULTIPROC_DIR once, when it is first imported: the API's gunicorn master
and the monitor's supervisor call prepare() before anything imports `instruments`, and before they fork. Their
children inherit the variable, write their figures there, and one endpoint adds them up.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
# The arrival-lag histogram's bounds, shared by Prometheus and the per-minute figures in Redis; then +Inf.
LAG_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)


def prepare(configured: str, kind: str) -> tuple[Path, bool]:
    """Point PROMETHEUS_MULTIPROC_DIR at an empty directory: `configured` wiped of the last run's files, or a new
    temporary one; returns it and whether it was made here (then remove() it at exit)."""
    if "prometheus_client.values" in sys.modules and not os.environ.get(ENV):
        log.warning("prometheus_client was imported before %s was set: figures of child processes are lost", ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # a restarted container must not add up the last run's processes
            stale.unlink(missing_ok=True)
        made = False
    else:
        path, made = Path(tempfile.mkdtemp(prefix=f"datafy-{kind}-metrics-")), True
    os.environ[ENV] = str(path)
    return path, made


def remove(path: Path) -> None:
    """Delete a directory prepare() made."""
    shutil.rmtree(path, ignore_errors=True)
