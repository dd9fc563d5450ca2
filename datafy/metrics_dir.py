"""Where prometheus-client's multiprocess mode keeps its files: set before the client is imported anywhere.

The API's gunicorn master and the monitor's supervisor call prepare() once, before they fork: their children
inherit PROMETHEUS_MULTIPROC_DIR, write their figures there, and one endpoint adds them up.
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
