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


class Flusher(threading.Thread):
    """Seals every batch whose deadline passed, each FLUSH_POLL_INTERVAL or at once on an expired-event hint.

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

    def run(self) -> None:
        guard = LoopGuard("flusher", outage_level=logging.DEBUG)  # the main loop already warns of an outage
        while not self.stop.is_set():
            if not guard.run(self.flush_due):
                self.stop.wait(guard.delay)
                continue
            self.last_round = time.monotonic()
            self.hint.wait(self.interval)
            self.hint.clear()
            # Under a stream of expired events, one round per event would seal one batch per round trip:
            # a short pause lets a round gather every batch that fell due meanwhile.
            self.stop.wait(min(self.interval, HINTED_ROUND_GAP_SECONDS) - (time.monotonic() - self.last_round))

    def flush_due(self) -> None:
        """Seal every batch whose deadline has passed into its user's outbox."""
        polled = self.assignment.polled if self.assignment else None
        flushed = self.store.buffer.flush_due(FLUSH_BATCH_PER_PARTITION, polled)
        if flushed:
            self.on_sealed()
            instruments.count_sealed(batch.reason for batch in flushed)
        for batch in flushed:
            log.debug("flushed user=%s seq=%d messages=%d", batch.user, batch.sequence, batch.count)
