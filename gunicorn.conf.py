"""Gunicorn settings for the API, read automatically by `gunicorn api:app` from this folder."""

import os
import sys

from dotenv import load_dotenv

from datafy import metrics
from datafy.config import Settings
from datafy.config.cpus import available_cpus
from datafy.errors import ConfigurationError
from datafy.launch import check_store

load_dotenv()  # so PORT, WEB_CONCURRENCY, ... in .env apply to a plain `gunicorn api:app` too

# Check the settings once, in the master: a worker that fails on them would be restarted forever.
try:
    _settings = Settings.from_env()
    _settings.check_api()
    check_store(_settings)  # a CA we do not trust, another REDIS_PARTITIONS, REDIS_DB on a Cluster
except ConfigurationError as exc:
    sys.stderr.write(f"configuration error: {exc}\n")
    sys.exit(2)  # as the monitor does


def _env(name: str, default: str) -> str:
    """An empty variable (as compose's env_file passes it) means the default, as in datafy/config.py."""
    return os.environ.get(name, "").strip() or default


bind = f"{_env('HOST', '0.0.0.0')}:{_env('PORT', '5000')}"
workers = int(_env("WEB_CONCURRENCY", str(2 * available_cpus() + 1)))
worker_class = "gthread"
threads = int(_env("GUNICORN_THREADS", "4"))
keepalive = 5
timeout = 30
graceful_timeout = 20
accesslog = _env("GUNICORN_ACCESS_LOG", "") or None
logger_class = "datafy.http.access_log.RedactingLogger"  # ?key= and hub.verify_token never reach a log line
errorlog = "-"
control_socket_disable = True  # several gunicorns may share a machine (tests, bench); we do not use gunicornc


# Prometheus multiprocess mode (datafy/metrics/): every worker writes its figures to PROMETHEUS_MULTIPROC_DIR,
# and /metrics adds them up. The variable points at an emptied directory here, as this file is read: before
# gunicorn loads logger_class (whose package imports prometheus_client) and before any worker starts.
_metrics_path, _metrics_path_made = metrics.prepare(_settings.metrics_dir, "api")


def post_fork(server: object, worker: object) -> None:
    if _settings.api_nice:  # workers only: the master stays responsive to signals and restarts
        try:
            os.nice(_settings.api_nice)
        except OSError as exc:  # a sandbox that forbids it: serve at the usual priority rather than not at all
            server.log.warning("API_NICE=%d not applied: %s", _settings.api_nice, exc)  # type: ignore[attr-defined]


def child_exit(server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    if _metrics_path_made:
        metrics.remove(_metrics_path)
