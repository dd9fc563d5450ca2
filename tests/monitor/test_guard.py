"""The loop guard (datafy/monitor/guard.py): a loop that must never die logs a Redis outage once and every bug with
its traceback, waits longer after each failure up to a cap, and starts afresh after a round that went through."""

from __future__ import annotations

import logging

import pytest

from datafy.errors import StoreUnavailableError
from datafy.monitor.guard import FIRST_WAIT_SECONDS, MAX_WAIT_SECONDS, LoopGuard


def outage() -> None:
    raise StoreUnavailableError("redis unavailable: ConnectionError: connection refused")


def bug() -> None:
    raise KeyError("batch")


def fine() -> None:
    pass


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="datafy.monitor.guard")
    return caplog


def test_an_outage_is_logged_once_however_many_rounds_fail(logs: pytest.LogCaptureFixture) -> None:
    guard = LoopGuard("main loop")
    assert [guard.run(outage) for _ in range(5)] == [False] * 5
    [record] = logs.records
    assert record.levelno == logging.WARNING and "redis unavailable" in record.getMessage()
    assert record.exc_info is None  # an outage is no bug: no traceback


def test_every_bug_is_logged_with_its_traceback(logs: pytest.LogCaptureFixture) -> None:
    guard = LoopGuard("flusher")
    assert not guard.run(bug) and not guard.run(bug)
    assert len(logs.records) == 2
    for record in logs.records:
        assert record.levelno == logging.ERROR and "unexpected error in the flusher" in record.getMessage()
        assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_a_round_that_goes_through_ends_the_outage_and_the_next_one_is_logged_again(
    logs: pytest.LogCaptureFixture,
) -> None:
    guard = LoopGuard("main loop")
    guard.run(outage)
    guard.run(outage)
    assert guard.run(fine) and guard.delay == 0.0
    assert "main loop recovered; resuming" in logs.records[-1].getMessage()
    assert logs.records[-1].levelno == logging.INFO
    assert guard.run(fine) and len(logs.records) == 2  # recovered once, not after every round
    guard.run(outage)
    assert [r.levelno for r in logs.records] == [logging.WARNING, logging.INFO, logging.WARNING]
    assert guard.delay <= FIRST_WAIT_SECONDS  # the wait starts over too


def test_a_quiet_guard_logs_the_outage_at_its_own_level(logs: pytest.LogCaptureFixture) -> None:
    """The flusher's guard: the main loop already warns of the outage, so the flusher only says it at DEBUG."""
    guard = LoopGuard("flusher", outage_level=logging.DEBUG)
    guard.run(outage)
    guard.run(fine)
    assert [r.levelno for r in logs.records] == [logging.DEBUG, logging.DEBUG]


def test_the_wait_doubles_with_each_failure_up_to_the_cap() -> None:
    guard = LoopGuard("main loop")
    for failures in range(1, 12):
        guard.run(outage)
        bound = min(MAX_WAIT_SECONDS, FIRST_WAIT_SECONDS * 2 ** (failures - 1))
        assert bound / 2 <= guard.delay <= bound, (failures, guard.delay)
    assert guard.delay >= MAX_WAIT_SECONDS / 2  # capped, and still retried at least every MAX_WAIT_SECONDS
