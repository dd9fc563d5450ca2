"""The flusher (datafy/monitor/flusher.py) over a real Redis: it seals the due batches of this monitor's partitions
and no others, tells the main loop when it sealed some, and an expired-event hint wakes a round at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from datafy.monitor.flusher import Flusher
from datafy.monitor.partitions import BACKUP_AFTER_MS, HANDOVER_SECONDS, Assignment
from datafy.store import Store
from tests.support.messages import msg


def user_in(store: Store, partitions: frozenset[int]) -> str:
    """A user id whose keys live in one of `partitions`."""
    return next(f"u{i}" for i in range(10_000) if store.keys.partition_of(f"u{i}") in partitions)


def first_of_three(partitions: int) -> Assignment:
    """The share of the first of three monitors: a third on time, the next third as backup, the last not at all."""
    assignment = Assignment(partitions)
    assignment.update(["a", "b", "c"], "a", now=0)
    assignment.update(["a", "b", "c"], "a", now=HANDOVER_SECONDS)  # the handover is over
    return assignment


def sealed(store: Store) -> set[str]:
    """The users with a sealed batch waiting for delivery."""
    return {claim.user for claim in store.outbox.claim(100, 10)}


def test_due_batches_of_the_partitions_it_polls_on_time_are_sealed_and_the_loop_is_told(store: Store) -> None:
    told: list[None] = []
    flusher = Flusher(store, 0.05, threading.Event(), lambda: told.append(None), first_of_three(16))
    flusher.flush_due()
    assert told == []  # nothing sealed, nothing to tell
    partitions = flusher.assignment.on_time | flusher.assignment.backup
    others = frozenset(range(16)) - partitions
    mine, backed_up, not_mine = (user_in(store, p) for p in (flusher.assignment.on_time, flusher.assignment.backup,
                                                                    others))  # fmt: skip
    later = user_in(store, flusher.assignment.on_time - {store.keys.partition_of(mine)})
    for user in (mine, backed_up, not_mine):
        store.buffer.append(msg(user, "oi", ttl_ms=1))
    store.buffer.append(msg(later, "oi", ttl_ms=60_000))
    time.sleep(0.01)
    flusher.flush_due()
    assert len(told) == 1  # once per round, however many it sealed
    assert sealed(store) == {mine}  # the backup's and the other monitor's are theirs, the later one is not due


def test_a_partition_it_backs_up_is_sealed_once_overdue_and_an_unassigned_one_never(store: Store) -> None:
    flusher = Flusher(store, 0.05, threading.Event(), lambda: None, first_of_three(16))
    others = frozenset(range(16)) - flusher.assignment.on_time - flusher.assignment.backup
    backed_up, not_mine = user_in(store, flusher.assignment.backup), user_in(store, others)
    for user in (backed_up, not_mine):
        store.buffer.append(msg(user, "oi", ttl_ms=1))
    time.sleep(BACKUP_AFTER_MS / 1000 + 0.05)  # its owner is dead or stuck
    flusher.flush_due()
    assert sealed(store) == {backed_up}


def test_without_an_assignment_every_partition_is_polled(store: Store) -> None:
    told: list[None] = []
    flusher = Flusher(store, 0.05, threading.Event(), lambda: told.append(None))
    users = [user_in(store, frozenset({p})) for p in range(16)]
    for user in users:
        store.buffer.append(msg(user, "oi", ttl_ms=1))
    time.sleep(0.01)
    flusher.flush_due()
    assert sealed(store) == set(users) and len(told) == 1


@pytest.fixture
def slow_flusher(store: Store) -> Iterator[tuple[Flusher, threading.Event]]:
    """A running flusher that polls only every 30 s on its own; its `sealed` event is set when a round seals."""
    stop, sealed_now = threading.Event(), threading.Event()
    flusher = Flusher(store, 30.0, stop, sealed_now.set)
    before = flusher.last_round
    flusher.start()
    deadline = time.monotonic() + 5
    while flusher.last_round == before:  # its first round, at start, is over
        assert time.monotonic() < deadline, "the flusher's first round did not end"
        time.sleep(0.01)
    yield flusher, sealed_now
    stop.set()
    flusher.hint.set()  # as the daemon does on a stop: the wait for the next round ends at once
    flusher.join(timeout=5)
    assert not flusher.is_alive()


def test_a_hint_wakes_a_round_at_once_instead_of_at_the_next_poll(
    store: Store, slow_flusher: tuple[Flusher, threading.Event]
) -> None:
    flusher, sealed_now = slow_flusher
    store.buffer.append(msg("hinted", "oi", ttl_ms=200))
    time.sleep(0.4)
    assert not sealed_now.is_set() and store.buffer.peek("hinted") is not None  # due, but the next poll is 30 s away
    started = time.monotonic()
    flusher.hint.set()  # the timer's expired event
    assert sealed_now.wait(2) and time.monotonic() - started < 1.0
    assert sealed(store) == {"hinted"}


def test_a_batch_open_at_a_round_is_sealed_when_it_comes_due_without_a_hint_or_a_poll(store: Store) -> None:
    stop, sealed_now = threading.Event(), threading.Event()
    store.buffer.append(msg("known", "oi", ttl_ms=300))
    flusher = Flusher(store, 30.0, stop, sealed_now.set)  # its first round sees the deadline coming
    started = time.monotonic()
    flusher.start()
    try:
        assert sealed_now.wait(5), "not sealed at its deadline: the next poll is 30 s away"
        assert time.monotonic() - started >= 0.29  # not before the deadline
        assert sealed(store) == {"known"}
    finally:
        stop.set()
        flusher.hint.set()
        flusher.join(timeout=5)
