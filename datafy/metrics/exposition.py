"""The text format a scrape gets: every process's counters and histograms added up, then gauges read from Redis.

Custom collectors do not work in prometheus-client's multiprocess mode, so the gauges (pending chats, ready
batches, dead letters, monitors alive) are rendered by hand at scrape time and appended.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from datafy.errors import StoreUnavailableError
from datafy.metrics import ENV
from datafy.store import Store

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Gauges read from Redis at scrape time: (name, help).
GAUGES = (
    ("datafy_pending_chats", "Chats with an open batch (still typing)"),
    ("datafy_due_next_minute_chats", "Open batches due within the next minute"),
    ("datafy_ready_batches", "Chats whose next sealed batch may be sent now"),
    ("datafy_retrying_batches", "Chats whose next batch waits for a retry"),
    ("datafy_in_flight_batches", "Batches being POSTed now, over every live monitor process"),
    ("datafy_dead_letters", "Batches that could not be delivered"),
    ("datafy_monitors_alive", "Monitor processes that beat within the last 5 seconds"),
    ("datafy_held_chats", "Chats whose next batch waits for the workflow's verdict on the last one (await_answer)"),
    ("datafy_paused_chats", "Chats a person took over (their batches still go out, marked paused)"),
)


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
              counts.dead_letters, len(monitors), counts.held, counts.paused)  # fmt: skip
    text = "".join(_gauge(name, help_, value) for (name, help_), value in zip(GAUGES, values, strict=True))
    return text + _gauge("datafy_redis_up", "1 when Redis answered this scrape", 1)


def _gauge(name: str, help_: str, value: float) -> str:
    return f"# HELP {name} {help_}\n# TYPE {name} gauge\n{name} {float(value)}\n"
