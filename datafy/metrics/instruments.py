"""The counters and histograms, shared by the API and the monitor (prometheus-client in multiprocess mode).

Importing this module imports prometheus_client: under gunicorn and in the monitor's processes, call
datafy.metrics.prepare() first (see there). Labels take small fixed sets of values, never a user id.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Counter, Histogram, multiprocess

from datafy.metrics import ENV, LAG_BUCKETS_MS
from datafy.model import AppendResult
from datafy.routes.chats import DEFAULT_ROUTE

RECEIVED_RESULTS = ("buffered", "duplicate", "flushed", "rejected", "unavailable")
SEAL_REASONS = (
    "ttl",
    "max_wait",
    "max_messages",
    "max_bytes",
    "request",
    "keyword",
    "manual",
    "answered",
    "unanswered",
    "answer_timeout",
)
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
VERDICTS = Counter(
    "datafy_batch_verdicts",
    "The workflow's verdicts on delivered batches (unanswered: carried over to the next batch)",
    ["verdict"],
)
# Per route (datafy/routes/), only for routes other than `default`: a deployment without routes keeps exactly the
# series it had, and the label's values are bounded by the number of routes.
ROUTE_MESSAGES = Counter(
    "datafy_route_messages_received", "Messages a route's keys sent to the API, by what became of them",
    ["route", "result"],
)  # fmt: skip
ROUTE_DELIVERY_ATTEMPTS = Counter(
    "datafy_route_delivery_attempts", "Webhook delivery attempts of a route's batches, by outcome", ["route", "outcome"]
)
DELIVERY_LAG = Histogram(
    "datafy_delivery_lag_seconds", "Arrival of a delivered batch at the receiver minus the deadline it was due at",
    buckets=[bound / 1000 for bound in LAG_BUCKETS_MS],
)  # fmt: skip


def init_api() -> None:
    """Create the API's series at 0, so that rates start from the first scrape."""
    for result in RECEIVED_RESULTS:
        MESSAGES_RECEIVED.labels(result)
    for verdict in ("answered", "unanswered"):
        VERDICTS.labels(verdict)
    for reason in ("max_messages", "max_bytes", "request", "keyword", "manual", "max_wait"):
        BATCHES_SEALED.labels(reason)


def init_monitor() -> None:
    """Create the monitor's series at 0."""
    for outcome in OUTCOMES:
        DELIVERY_ATTEMPTS.labels(outcome)
    for reason in ("ttl", "max_wait", "manual"):
        BATCHES_SEALED.labels(reason)


def count_append(result: AppendResult, route: str = DEFAULT_ROUTE) -> None:
    """Count one appended message of `route`, and the batches its append sealed."""
    MESSAGES_RECEIVED.labels("duplicate" if result.status == "duplicate" else result.status).inc()
    if route != DEFAULT_ROUTE:
        ROUTE_MESSAGES.labels(route, "duplicate" if result.status == "duplicate" else result.status).inc()
    if result.status == "flushed":
        count_sealed([result.reason or "request"])
    if result.sealed is not None:
        count_sealed([result.sealed.reason])


def count_attempt(outcome: str, route: str = DEFAULT_ROUTE) -> None:
    """Count one delivery attempt's outcome (delivered, retry, dead_letter) of a batch of `route`."""
    DELIVERY_ATTEMPTS.labels(outcome).inc()
    if route != DEFAULT_ROUTE:
        ROUTE_DELIVERY_ATTEMPTS.labels(route, outcome).inc()


def count_rejected(status: int) -> None:
    """Count one message the API refused (4xx) or could not store (5xx)."""
    MESSAGES_RECEIVED.labels("rejected" if status < 500 else "unavailable").inc()


def count_sealed(reasons: Iterable[str]) -> None:
    """Count sealed batches by reason (an unknown reason counts as 'ttl': the label set stays fixed)."""
    for reason in reasons:
        BATCHES_SEALED.labels(reason if reason in SEAL_REASONS else "ttl").inc()


def mark_process_dead(pid: int) -> None:
    """A child process exited: drop its live-gauge files (its counters stay, so totals never go back)."""
    if os.environ.get(ENV):
        multiprocess.mark_process_dead(pid)
