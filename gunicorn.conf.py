"""Gunicorn settings for the API, read automatically by `gunicorn api:app` from this folder."""

import os

from dotenv import load_dotenv

load_dotenv()  # so PORT, WEB_CONCURRENCY, ... in .env apply to a plain `gunicorn api:app` too


def _env(name: str, default: str) -> str:
    """An empty variable (as compose's env_file passes it) means the default, as in datafy/config.py."""
    return os.environ.get(name, "").strip() or default


_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

bind = f"{_env('HOST', '0.0.0.0')}:{_env('PORT', '5000')}"
workers = int(_env("WEB_CONCURRENCY", str(2 * _cores + 1)))
worker_class = "gthread"
threads = int(_env("GUNICORN_THREADS", "4"))
keepalive = 5
timeout = 30
graceful_timeout = 20
accesslog = _env("GUNICORN_ACCESS_LOG", "") or None
errorlog = "-"
control_socket_disable = True  # several gunicorns may share a machine (tests, bench); we do not use gunicornc
