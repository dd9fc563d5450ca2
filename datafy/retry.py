"""Retry policy: which failures are retried, and when (pure functions): a webhook's retry schedule, and the one
backoff every loop of ours waits with after a failure (Redis reconnects, a dying process's restarts)."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 425, 429})
MAX_RETRY_AFTER_SECONDS = 10 * 3600  # a receiver may ask us to wait, but not forever


def is_retryable_status(status: int) -> bool:
    """Timeouts, rate limits and server errors are retried; other 3xx/4xx replies will not change."""
    return status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone also accepts "²"
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def retry_delay(
    attempt: int, schedule: tuple[float, ...], retry_after: float | None = None, rng: random.Random | None = None
) -> float | None:
    """Seconds before the next try after failed attempt number `attempt` (1-based); None when retries are spent.

    Step N of the schedule bounds the wait after attempt N, with bounded jitter: uniform in [step/2, step], so
    a retry never comes at once, and batches that failed together do not all come back at the same moment.
    A receiver's Retry-After is a floor on that wait (capped at MAX_RETRY_AFTER_SECONDS), never a shortcut:
    a `Retry-After: 0` or a date in the past still waits the schedule's step.
    """
    if attempt > len(schedule):
        return None
    step = schedule[attempt - 1]
    wait = (rng or random).uniform(step / 2, step)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return wait


def backoff(failures: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after `failures` failures in a row (1-based): `base` doubled per failure up to `cap`, with
    bounded jitter (uniform in [delay/2, delay]) so that processes that failed together do not retry together."""
    delay = min(cap, base * 2 ** min(max(failures, 1) - 1, 32))
    return (rng or random).uniform(delay / 2, delay)
