"""Sharing partitions among monitors: each polled on time by one, backed up by one other, whatever the count."""

from __future__ import annotations

from collections import Counter

import pytest

from datafy.monitor.partitions import BACKUP_AFTER_MS, BACKUP_LEASE_AFTER_MS, HANDOVER_SECONDS, Assignment


def shares(count: int, partitions: int = 16) -> list[Assignment]:
    ids = [f"m{i:02d}" for i in range(count)]
    assignments = [Assignment(partitions) for _ in ids]
    for me, assignment in zip(ids, assignments, strict=True):
        assignment.update(list(reversed(ids)), me, now=0)  # the order Redis answers in does not matter
        assignment.update(list(reversed(ids)), me, now=HANDOVER_SECONDS)  # the handover is over
    return assignments


@pytest.mark.parametrize("count", [1, 2, 3, 5, 16])
def test_every_partition_is_polled_on_time_by_one_monitor_and_backed_up_by_another(count: int) -> None:
    assignments = shares(count)
    on_time = Counter(p for a in assignments for p in a.on_time)
    assert on_time == Counter(range(16))  # each exactly once
    backups = Counter(p for a in assignments for p in a.backup)
    assert backups == (Counter() if count == 1 else Counter(range(16)))
    for a in assignments:
        assert not a.on_time & a.backup
        assert a.polled == {**dict.fromkeys(a.backup, BACKUP_AFTER_MS), **dict.fromkeys(a.on_time, 0)}
        assert a.leased == {**dict.fromkeys(a.backup, BACKUP_LEASE_AFTER_MS), **dict.fromkeys(a.on_time, 0)}


def test_polling_does_not_grow_with_the_number_of_monitors() -> None:
    for count in (1, 2, 4, 8, 16, 32):
        assert sum(len(a.polled) for a in shares(count)) <= 2 * 16


def test_a_monitor_whose_beat_did_not_land_polls_everything() -> None:
    assignment = Assignment(16)
    assignment.update(["m0", "m1"], "m1", now=0)
    assignment.update(["m0", "m1"], "m1", now=HANDOVER_SECONDS)
    assert len(assignment.on_time) == 8
    assignment.update(["m0"], "m1", now=10)
    assert assignment.on_time == set(range(16))


def test_after_a_change_the_old_share_is_still_polled_until_the_others_caught_up() -> None:
    """Regression: a batch arrived 2 s late while monitors learned of a newcomer one beat apart."""
    old, new = Assignment(16), Assignment(16)
    for assignment in (old, new):
        assignment.update(["a", "b"], "a", now=0)
        assignment.update(["a", "b"], "a", now=HANDOVER_SECONDS)
    new.update(["a", "b", "c"], "a", now=10)  # a learned of c; b has not yet
    assert new.on_time == {p for p in range(16) if p % 3 == 0} | old.on_time
    new.update(["a", "b", "c"], "a", now=10 + HANDOVER_SECONDS)
    assert new.on_time == {p for p in range(16) if p % 3 == 0}
