"""Process entry points: load .env, build and check the settings, start the API app or the monitor."""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from dotenv import load_dotenv
from flask import Flask

from datafy.config import Settings
from datafy.errors import ConfigurationError
from datafy.log import configure_logging

if TYPE_CHECKING:
    from datafy.monitor.exporter import Exporter

log = logging.getLogger("datafy")


def load_settings() -> Settings:
    """Settings from .env and the environment; a bad value exits with one line naming the variable."""
    load_dotenv()
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


APP_LOAD_ERROR = 4  # the exit status that makes gunicorn's master stop instead of starting the worker again


def api_app() -> Flask:
    """The WSGI app Gunicorn serves (`gunicorn api:app`)."""
    from datafy.http import create_app
    from datafy.store.checks import check_redis

    settings = load_settings()
    app = create_app(settings)
    try:
        check_redis(app.extensions["datafy.store"])  # also picks the mode and checks the partition count
    except ConfigurationError as exc:  # Redis changed since the master checked: halt gunicorn, not a restart loop
        sys.stderr.write(f"configuration error: {exc}\n")
        sys.exit(APP_LOAD_ERROR)
    return app


def run_monitor() -> int:
    """Run the monitor until SIGTERM/SIGINT: one process per CPU (MONITOR_PROCESSES), supervised by this one,
    which also serves their metrics on METRICS_PORT."""
    from datafy import metrics

    settings = load_settings()
    directory, made = metrics.prepare(settings.metrics_dir, "monitor")  # before prometheus_client is imported
    from datafy.monitor import Monitor, health
    from datafy.monitor.supervisor import Supervisor

    try:
        Monitor.validate(settings)
        check_store(settings)
    except ConfigurationError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return 2
    count = monitor_processes(settings)
    health.reset()
    exporter = start_exporter(settings)
    try:
        if count == 1:
            return run_monitor_process(settings, 0)
        return Supervisor(settings, count, run_monitor_process).run()
    finally:
        if exporter is not None:
            exporter.stop()
        if made:
            metrics.remove(directory)


def start_exporter(settings: Settings) -> Exporter | None:
    """The container's metrics endpoint on METRICS_PORT (None when 0). A port already taken is logged and
    skipped: metrics are not worth stopping deliveries for."""
    from datafy.monitor.exporter import Exporter
    from datafy.store import Store

    if not settings.metrics_port:
        return None
    try:
        return Exporter(settings, Store(settings)).start()
    except OSError as exc:
        log.error("no metrics: cannot listen on %s:%d (METRICS_PORT): %s", settings.metrics_host,
                  settings.metrics_port, exc)  # fmt: skip
        return None


def check_store(settings: Settings) -> None:
    """Raise ConfigurationError for what waiting cannot fix (an untrusted certificate, another REDIS_PARTITIONS
    than the one Redis holds, a database on a Cluster), when Redis answers already; a parent calls it once."""
    from datafy.errors import StoreUnavailableError
    from datafy.store import Store

    store = Store(settings)
    try:
        store.connection.ping()
    except StoreUnavailableError:
        pass  # each monitor process checks again when Redis is back
    finally:
        store.close()


def monitor_processes(settings: Settings) -> int:
    """How many monitor processes one container runs: MONITOR_PROCESSES, else one per CPU it may use."""
    from datafy.config.cpus import available_cpus

    return settings.monitor_processes or available_cpus()


def run_monitor_process(settings: Settings, slot: int) -> int:
    """One monitor process until a stop signal (see datafy/monitor/stopping.py); exits EXIT_UNFINISHED when
    deliveries were still in flight at the end of SHUTDOWN_GRACE."""
    from datafy.monitor import Monitor
    from datafy.monitor.stopping import EXIT_UNFINISHED, StopSignals

    monitor = Monitor(settings, slot=slot)
    interrupt = signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # a supervised process leaves Ctrl-C
    StopSignals(monitor.stop, lambda: os._exit(1)).install(interrupt)
    unfinished = monitor.run()
    logging.shutdown()
    if unfinished:
        os._exit(EXIT_UNFINISHED)  # don't wait for stuck POSTs: their leases hand the batches to the next monitor
    return 0
