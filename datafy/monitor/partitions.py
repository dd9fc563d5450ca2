"""Sharing the partitions among the monitor processes alive, in every container, so that polling Redis
costs the same however many monitors run: each partition is polled on time by one monitor, and for
overdue work only by the next one in line (which covers it until a dead monitor's beat runs out)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


# A partition is backed up by the next monitor in line, which acts on its work only when overdue by this much
# (the owner is dead or stuck): sealing and leasing are spread without two monitors racing for the same work.
BACKUP_AFTER_MS = 1000
# Sealed batches are leased by the backup monitor sooner: a monitor whose share is busier than its
# concurrency (WEBHOOK_CONCURRENCY) gets help within this much, as when every monitor leased from everyone.
BACKUP_LEASE_AFTER_MS = 200
# The others learn of a monitor that joined or left only at their next beat (1 s): for this long after a
# change this process keeps polling its old share on time too, so no partition goes unpolled meanwhile.
HANDOVER_SECONDS = 2.5


class Assignment:
    """The partitions this process polls on time, and the ones it backs up. Swapped whole: threads read it."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.on_time: frozenset[int] = frozenset(range(partitions))  # until the first beat: every partition
        self.backup: frozenset[int] = frozenset()
        self.polled: dict[int, int] = dict.fromkeys(self.on_time, 0)  # partition -> how overdue its work must be
        self.leased = self.polled  # the same, for leasing sealed batches
        self.shape = (0, 1)  # (my position, monitors alive)
        self.handover_until = 0.0  # while the old share is still polled too (monotonic clock)

    def update(self, alive: list[str], me: str, now: float | None = None) -> None:
        """Take this process's share, given the ids of every live monitor in order."""
        now = time.monotonic() if now is None else now
        if me not in alive:  # our beat did not land: poll everything until it does
            alive = [me]
        shape = (alive.index(me), len(alive))
        if shape == self.shape:
            if self.handover_until and now >= self.handover_until:  # the others have caught up: our share only
                self.handover_until = 0.0
                self._take(self.shape, frozenset())
            return
        self.handover_until = now + HANDOVER_SECONDS
        self._take(shape, self.on_time)
        position, count = shape
        share = sum(1 for p in range(self.partitions) if p % count == position)
        log.info("partitions shared by %d monitor(s): this one polls %d on time, and backs up the next one's",
                 count, share)  # fmt: skip
        if count > self.partitions and position == 0:
            log.warning(
                "%d monitor processes share %d partitions: %d of them are idle; raise REDIS_PARTITIONS "
                "(docs/SCALING.md)", count, self.partitions, count - self.partitions
            )  # fmt: skip

    def _take(self, shape: tuple[int, int], also_on_time: frozenset[int]) -> None:
        position, count = shape
        on_time = frozenset(p for p in range(self.partitions) if p % count == position) | also_on_time
        backup = frozenset(p for p in range(self.partitions) if p % count == (position + 1) % count) - on_time
        self.polled = {**dict.fromkeys(backup, BACKUP_AFTER_MS), **dict.fromkeys(on_time, 0)}
        self.leased = {**dict.fromkeys(backup, BACKUP_LEASE_AFTER_MS), **dict.fromkeys(on_time, 0)}
        self.on_time, self.backup, self.shape = on_time, backup, shape
