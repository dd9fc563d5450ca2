"""Gunicorn settings for the API, read automatically by `gunicorn api:app` from this folder."""

import math
import os
import sys
from pathlib import Path

from dotenv import load_dotenv

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gunicorn reads this file before it imports the app
from datafy.config import Settings
from datafy.errors import ConfigurationError

load_dotenv()  # so PORT, WEB_CONCURRENCY, ... in .env apply to a plain `gunicorn api:app` too

# Check the settings once, in the master: a worker that fails on them would be restarted forever.
try:
    Settings.from_env()
except ConfigurationError as exc:
    sys.exit(f"configuration error: {exc}")


def _env(name: str, default: str) -> str:
    """An empty variable (as compose's env_file passes it) means the default, as in datafy/config.py."""
    return os.environ.get(name, "").strip() or default


def _cores() -> int:
    """CPUs this container may use: its cgroup quota (docker --cpus, EasyPanel limits) or the CPUs it sees."""
    visible = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cgroup = Path("/sys/fs/cgroup")
    try:
        if (cgroup / "cpu.max").exists():  # cgroup v2: "<quota> <period>" or "max <period>"
            quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        else:  # cgroup v1: a quota of -1 means none
            quota, period = ((cgroup / "cpu" / name).read_text() for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
        return max(1, min(visible, math.ceil(int(quota) / int(period)))) if int(quota) > 0 else visible
    except (OSError, ValueError):  # no cgroup files, or "max": no quota
        return visible


bind = f"{_env('HOST', '0.0.0.0')}:{_env('PORT', '5000')}"
workers = int(_env("WEB_CONCURRENCY", str(2 * _cores() + 1)))
worker_class = "gthread"
threads = int(_env("GUNICORN_THREADS", "4"))
keepalive = 5
timeout = 30
graceful_timeout = 20
accesslog = _env("GUNICORN_ACCESS_LOG", "") or None
errorlog = "-"
control_socket_disable = True  # several gunicorns may share a machine (tests, bench); we do not use gunicornc
