"""Prometheus metrics, shared by the API and the monitor (prometheus-client in multiprocess mode).

Under gunicorn, and in the monitor's processes, PROMETHEUS_MULTIPROC_DIR must be set (datafy.metrics_dir)
before this module is imported: each process then writes its figures to files there and one endpoint adds them
up. Custom collectors do not work in that mode, so the gauges read from Redis (pending chats, ready batches,
dead letters, monitors alive) are rendered by hand at scrape time and appended. Labels take small fixed sets
of values, never a user id.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from datafy.errors import StoreUnavailableError
from datafy.metrics_dir import ENV
from datafy.model import AppendResult
from datafy.store import Store
from datafy.store.stats import LAG_BUCKETS_MS

CONTENT_TYPE = CONTENT_TYPE_LATEST
RECEIVED_RESULTS = ("buffered", "duplicate", "flushed", "rejected", "unavailable")
SEAL_REASONS = ("ttl", "max_wait", "max_messages", "max_bytes", "request", "keyword", "manual")
OUTCOMES = ("delivered", "retry", "dead_letter")

MESSAGES_RECEIVED = Counter(
    "datafy_messages_received", "Messages sent to the API, by what became of them (rejected: 4xx, unavailable: 5xx)",
    ["result"],
)  # fmt: skip
BATCHES_SEALED = Counter("datafy_batches_sealed", "Batches sealed for delivery, by why they were closed", ["reason"])
DELIVERY_ATTEMPTS = Counter(
    "datafy_delivery_attempts", "Webhook delivery attempts, by outcome (retry: failed, tried again later)", ["outcome"]
)
DELIVERY_DURATION = Histogram(
    "datafy_delivery_duration_seconds", "Time of one webhook POST, connect included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60),
)  # fmt: skip
DELIVERY_LAG = Histogram(
    "datafy_delivery_lag_seconds", "Arrival of a delivered batch at the receiver minus the deadline it was due at",
    buckets=[bound / 1000 for bound in LAG_BUCKETS_MS],
)  # fmt: skip

# Gauges read from Redis at scrape time: (name, help).
GAUGES = (
    ("datafy_pending_chats", "Chats with an open batch (still typing)"),
    ("datafy_due_next_minute_chats", "Open batches due within the next minute"),
    ("datafy_ready_batches", "Chats whose next sealed batch may be sent now"),
    ("datafy_retrying_batches", "Chats whose next batch waits for a retry"),
    ("datafy_in_flight_batches", "Batches being POSTed now, over every live monitor process"),
    ("datafy_dead_letters", "Batches that could not be delivered"),
    ("datafy_monitors_alive", "Monitor processes that beat within the last 5 seconds"),
)


def init_api() -> None:
    """Create the API's series at 0, so that rates start from the first scrape."""
    for result in RECEIVED_RESULTS:
        MESSAGES_RECEIVED.labels(result)
    for reason in ("max_messages", "max_bytes", "request", "keyword", "manual", "max_wait"):
        BATCHES_SEALED.labels(reason)


def init_monitor() -> None:
    """Create the monitor's series at 0."""
    for outcome in OUTCOMES:
        DELIVERY_ATTEMPTS.labels(outcome)
    for reason in ("ttl", "max_wait", "manual"):
        BATCHES_SEALED.labels(reason)


def count_append(result: AppendResult) -> None:
    """Count one appended message, and the batches its append sealed."""
    MESSAGES_RECEIVED.labels("duplicate" if result.status == "duplicate" else result.status).inc()
    if result.status == "flushed":
        count_sealed([result.reason or "request"])
    if result.sealed is not None:
        count_sealed([result.sealed.reason])


def count_rejected(status: int) -> None:
    """Count one message the API refused (4xx) or could not store (5xx)."""
    MESSAGES_RECEIVED.labels("rejected" if status < 500 else "unavailable").inc()


def count_sealed(reasons: Iterable[str]) -> None:
    """Count sealed batches by reason (an unknown reason counts as 'ttl': the label set stays fixed)."""
    for reason in reasons:
        BATCHES_SEALED.labels(reason if reason in SEAL_REASONS else "ttl").inc()


def exposition(store: Store) -> bytes:
    """The text format: the counters and histograms of every process, then the gauges read from Redis now."""
    if os.environ.get(ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:  # one process (tests, a plain `flask run`): the default registry holds everything
        registry = REGISTRY
    return generate_latest(registry) + redis_gauges(store).encode()


def redis_gauges(store: Store) -> str:
    """The gauges from Redis (a few counting commands, no scan), and datafy_redis_up."""
    try:
        counts = store.views.counts()
        monitors = store.monitors.alive()
    except StoreUnavailableError:
        return _gauge("datafy_redis_up", "1 when Redis answered this scrape", 0)
    in_flight = sum(int(record.get("in_flight", 0)) for record in monitors)
    values = (counts.pending_chats, counts.due_next_minute, counts.ready, counts.retrying, in_flight,
              counts.dead_letters, len(monitors))  # fmt: skip
    text = "".join(_gauge(name, help_, value) for (name, help_), value in zip(GAUGES, values, strict=True))
    return text + _gauge("datafy_redis_up", "1 when Redis answered this scrape", 1)


def _gauge(name: str, help_: str, value: float) -> str:
    return f"# HELP {name} {help_}\n# TYPE {name} gauge\n{name} {float(value)}\n"


def mark_process_dead(pid: int) -> None:
    """A child process exited: drop its live-gauge files (its counters stay, so totals never go back)."""
    if os.environ.get(ENV):
        multiprocess.mark_process_dead(pid)
