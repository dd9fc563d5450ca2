"""Retry policy (datafy/retry.py): what is retried, the jittered schedule, Retry-After, and the one backoff."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import pytest

from datafy.config import Settings
from datafy.retry import MAX_RETRY_AFTER_SECONDS, backoff, is_retryable_status, parse_retry_after, retry_delay

SCHEDULE = (5.0, 300.0, 1800.0)


def test_retryable_statuses() -> None:
    assert all(is_retryable_status(s) for s in (408, 425, 429, 500, 502, 503, 504))
    assert not any(is_retryable_status(s) for s in (301, 302, 400, 401, 403, 404, 410, 422))


def test_delay_is_bounded_jitter_within_each_step_and_ends() -> None:
    rng = random.Random(7)
    for attempt, step in enumerate(SCHEDULE, start=1):
        delays = [retry_delay(attempt, SCHEDULE, rng=rng) for _ in range(200)]
        assert all(d is not None and step / 2 <= d <= step for d in delays)  # never at once
        assert max(delays) > step * 0.9 and min(delays) < step * 0.6  # spread over the upper half of the step
    assert retry_delay(len(SCHEDULE) + 1, SCHEDULE) is None


def test_retry_after_is_a_floor_never_a_shortcut() -> None:
    assert retry_delay(1, SCHEDULE, retry_after=42) == 42
    assert retry_delay(1, SCHEDULE, retry_after=10**9) == MAX_RETRY_AFTER_SECONDS
    assert 150 <= retry_delay(2, SCHEDULE, retry_after=0) <= 300  # "Retry-After: 0" or a date in the past
    assert retry_delay(4, SCHEDULE, retry_after=1) is None


def test_the_default_schedule_is_paced_for_a_conversation() -> None:
    schedule = Settings().webhook_retry_schedule
    assert schedule[:3] == (1, 2, 5)  # two blips cost seconds, not minutes
    assert 20 * 3600 <= sum(schedule) <= 30 * 3600  # about a day before a batch is dead-lettered


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120
    now = time.time()
    assert parse_retry_after(formatdate(now + 60, usegmt=True), now=now) == pytest.approx(60, abs=1.5)
    assert parse_retry_after(formatdate(now - 60, usegmt=True), now=now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("") is None
    assert parse_retry_after("\u00b2") is None  # "²" (a latin-1 byte) is a digit to str.isdigit, not a number


def test_backoff_doubles_per_failure_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    rng = random.Random(11)
    for failures, bound in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.6), (6, 2.0), (7, 2.0), (10**6, 2.0)]:
        waits = [backoff(failures, 0.1, 2.0, rng) for _ in range(300)]
        assert all(bound / 2 <= wait <= bound for wait in waits), failures  # never at once, never past the cap
        assert max(waits) > bound * 0.9 and min(waits) < bound * 0.6  # spread: processes that failed together part


def test_backoff_before_any_failure_waits_as_after_the_first() -> None:
    assert all(0.05 <= backoff(failures, 0.1, 2.0) <= 0.1 for failures in (0, -3, 1))
