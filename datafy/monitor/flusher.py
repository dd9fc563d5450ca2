"""Sealing: every batch whose deadline passed moves into its user's outbox, in a thread of its own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from datafy.metrics import instruments
from datafy.monitor.guard import LoopGuard
from datafy.monitor.partitions import Assignment
from datafy.store import Store

log = logging.getLogger(__name__)

FLUSH_BATCH_PER_PARTITION = 1000
HINTED_ROUND_GAP_SECONDS = 0.02  # the least time between two flush rounds, however many hints come
# Waking for the next deadline, this much after it: a round that came a moment early would seal nothing and then
# wait out the gap above.
DEADLINE_SLACK_SECONDS = 0.002


class Flusher(threading.Thread):
    """Seals every batch whose deadline passed: when the next deadline comes, each FLUSH_POLL_INTERVAL at the
    latest (a newer batch may be due sooner), or at once on an expired-event hint.

    A thread of its own, so that sealing and delivering never wait for each other.
    """

    def __init__(
        self,
        store: Store,
        interval: float,
        stop: threading.Event,
        on_sealed: Callable[[], None],
        assignment: Assignment | None = None,
    ) -> None:
        super().__init__(name="flusher", daemon=True)
        self.store, self.interval, self.stop, self.on_sealed = store, interval, stop, on_sealed
        self.assignment = assignment
        self.hint = threading.Event()
        self.last_round = time.monotonic()
        self.next_due: float | None = None  # seconds from the last round to the next deadline it saw (None: none)

    def run(self) -> None:
        guard = LoopGuard("flusher", outage_level=logging.DEBUG)  # the main loop already warns of an outage
        while not self.stop.is_set():
            if not guard.run(self.flush_due):
                self.stop.wait(guard.delay)
                continue
            self.last_round = time.monotonic()
            # Redis finds expired timers ten times a second (hz 10), so their events come up to 100 ms late:
            # the due index, read by every round, says when the next batch is due.
            wait = (
                self.interval if self.next_due is None else min(self.interval, self.next_due + DEADLINE_SLACK_SECONDS)
            )
            self.hint.wait(wait)
            self.hint.clear()
            # Under a stream of expired events, one round per event would seal one batch per round trip:
            # a short pause lets a round gather every batch that fell due meanwhile.
            self.stop.wait(min(self.interval, HINTED_ROUND_GAP_SECONDS) - (time.monotonic() - self.last_round))

    def flush_due(self) -> None:
        """Seal every batch whose deadline has passed into its user's outbox."""
        polled = self.assignment.polled if self.assignment else None
        flushed, self.next_due = self.store.buffer.flush_due_timed(FLUSH_BATCH_PER_PARTITION, polled)
        if flushed:
            self.on_sealed()
            instruments.count_sealed(batch.reason for batch in flushed)
        for batch in flushed:
            log.debug("flushed user=%s seq=%d messages=%d", batch.user, batch.sequence, batch.count)
