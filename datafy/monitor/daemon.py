"""One monitor process: a flusher seals due batches, the main loop leases ready ones for the sender and
records how each attempt went."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from urllib.parse import urlsplit

from datafy import __version__, metrics
from datafy.checks import check_redis
from datafy.config import Settings
from datafy.errors import ConfigurationError, StoreUnavailableError
from datafy.monitor.breaker import ReceiverGate
from datafy.monitor.delivery import Recorder
from datafy.monitor.health import Heartbeat
from datafy.monitor.listener import ExpiryListener
from datafy.monitor.partitions import Assignment
from datafy.monitor.sender import Sender, Sent
from datafy.store import Store

log = logging.getLogger(__name__)

FLUSH_BATCH_PER_PARTITION = 1000
MAX_OUTAGE_BACKOFF_SECONDS = 2.0
STALLED_AFTER_SECONDS = 20.0  # a flusher quiet this long makes the heartbeat stop (the healthcheck then fails)
HINTED_ROUND_GAP_SECONDS = 0.02  # the least time between two flush rounds, however many hints come
BEAT_EVERY_SECONDS = 1.0  # how often each process tells Redis it is alive (and learns its partitions)


class Monitor:
    """One monitor process. Several may share a Redis: leases keep them from delivering a batch twice."""

    def __init__(self, settings: Settings, store: Store | None = None, slot: int = 0) -> None:
        self.validate(settings)
        self.settings = settings
        self.store = store or Store(settings)
        self.stopping = threading.Event()
        self.wake = threading.Event()  # run the main loop now rather than at the next poll
        s = settings
        self.sender = Sender(s, on_finished=self.wake.set)
        self.recorder = Recorder(settings, self.store)
        self.gate = ReceiverGate(self.store.breaker)
        self.assignment = Assignment(self.store.keys.partitions)
        self.flusher = Flusher(self.store, s.flush_poll_interval, self.stopping, self.wake.set, self.assignment)
        self.in_flight = 0  # leased and not yet recorded; the main loop's thread only
        self.unacked: list[Sent] = []  # delivered, but Redis did not take the acknowledgement yet
        self.slot = slot
        self.heartbeat = Heartbeat(slot)
        self.id = f"{socket.gethostname()}-{os.getpid()}"
        self.started = time.time()
        self.last_beat = -BEAT_EVERY_SECONDS
        self.stop_reason = ""
        metrics.init_monitor()

    @staticmethod
    def validate(settings: Settings) -> None:
        """Raise ConfigurationError for settings a monitor cannot run with (checked before any process starts)."""
        if not settings.webhook_url:
            raise ConfigurationError("WEBHOOK_URL is required: the monitor has nowhere to deliver batches")

    def stop(self, why: str = "") -> None:
        """Ask the loop to stop claiming work (`why`: the signal, for the log); safe to call from a signal
        handler."""
        self.stop_reason = why
        self.stopping.set()
        self.wake.set()
        self.flusher.hint.set()

    def run(self) -> int:
        """Run until stop(); returns how many deliveries were still in flight when the grace period ran out."""
        s = self.settings
        log.info(
            "monitor starting process=%d redis=%s webhook=%s concurrency=%d poll=%.3fs",
            self.slot, s.redis_url_redacted, _redact_url(s.webhook_url), s.webhook_concurrency, s.flush_poll_interval,
        )  # fmt: skip
        check_redis(self.store)
        listener = ExpiryListener(self.store, self._expired, self.stopping)
        self.sender.start()
        listener.start()
        self.flusher.start()
        try:
            self._loop()
            if self.stop_reason:
                log.info("received %s: finishing in-flight deliveries, then stopping", self.stop_reason)
            return self._drain()
        finally:
            self.heartbeat.clear()
            with suppress(StoreUnavailableError):
                self.store.monitors.leave(self.id)
            listener.join(timeout=2)
            self.flusher.join(timeout=2)
            self.sender.stop()

    def _expired(self, user: str) -> None:
        """An expired timer: a hint for the flusher, if the user's partition is this process's to seal."""
        if self.store.keys.partition_of(user) in self.assignment.on_time:
            self.flusher.hint.set()

    def _loop(self) -> None:
        backoff = Backoff("monitor loop")
        while not self.stopping.is_set():
            if not backoff.run(self._round):
                self.stopping.wait(backoff.delay)
                continue
            if time.monotonic() - self.flusher.last_round < STALLED_AFTER_SECONDS:
                self.heartbeat.beat()
                if time.monotonic() - self.last_beat >= BEAT_EVERY_SECONDS:
                    backoff.run(self._beat)
            self.wake.wait(self.settings.flush_poll_interval)
            self.wake.clear()

    def _round(self, claiming: bool = True) -> None:
        """Record what finished and lease work for the free slots, acknowledgements and leases together in two
        round trips. Ready retries are found by this poll."""
        finished = self.sender.take_finished()
        self.in_flight -= len(finished)
        delivered = self.unacked + [sent for sent in finished if sent.result.delivered]
        self.unacked = []
        slots = self.settings.webhook_concurrency - self.in_flight
        breaker = self.gate.settle(finished, claiming and slots > 0)
        # Attempts made while the receiver is down, or just back, do not bring a batch nearer its dead letter.
        self.recorder.failed([sent for sent in finished if not sent.result.delivered], counted=breaker.counts_attempts)
        free, probing = self.gate.allowance(slots) if claiming else (0, False)
        # The probe may be any waiting batch: the one process holding the turn may not poll its partition.
        partitions = None if probing else self.assignment.leased
        try:
            _, claims = self.store.outbox.ack_and_claim(
                [sent.claim for sent in delivered], free, self.settings.delivery_visibility_timeout, partitions
            )
        except StoreUnavailableError:
            self.unacked = delivered  # acknowledged next round; a 2xx counts even after its lease passed on
            if probing:
                self.gate.unused_probe()
            raise
        if probing and not claims:
            self.gate.unused_probe()
        self.recorder.delivered(delivered)
        self.in_flight += len(claims)
        self.sender.submit(claims)

    def _beat(self) -> None:
        """Tell Redis this process is alive, and take this process's share of the partitions."""
        self.last_beat = time.monotonic()
        record = {"host": socket.gethostname(), "pid": os.getpid(), "version": __version__,
                  "started_ms": int(self.started * 1000), "in_flight": self.in_flight,
                  "receiver": self.store.breaker.key}  # fmt: skip
        self.assignment.update(self.store.monitors.beat(self.id, record), self.id)

    def _drain(self) -> int:
        """Stop claiming, keep recording until in-flight POSTs finish or SHUTDOWN_GRACE runs out."""
        grace = self.settings.shutdown_grace
        if self.in_flight:
            log.info("stopping: waiting up to %.0fs for %d delivery(ies)", grace, self.in_flight)
        deadline = time.monotonic() + grace
        while (self.in_flight or self.unacked) and time.monotonic() < deadline:
            self.wake.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            self.wake.clear()
            try:
                self._round(claiming=False)
            except StoreUnavailableError as exc:  # their leases run out and the batches are tried again
                log.warning("stopping without recording some outcomes: %s", exc)
        unfinished = self.in_flight + len(self.unacked)
        if unfinished:
            log.warning("stopping with %d delivery(ies) unfinished after SHUTDOWN_GRACE; they are sent again after "
                        "their lease", unfinished)  # fmt: skip
        else:
            log.info("monitor stopped cleanly")
        return unfinished


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
        backoff = Backoff("flusher", outage_level=logging.DEBUG)  # the main loop already warns of an outage
        while not self.stop.is_set():
            if not backoff.run(self.flush_due):
                self.stop.wait(backoff.delay)
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
            metrics.count_sealed(batch.reason for batch in flushed)
        for batch in flushed:
            log.debug("flushed user=%s seq=%d messages=%d", batch.user, batch.sequence, batch.count)


class Backoff:
    """Runs one round of a loop that must never die: logs an outage once, a bug with its traceback."""

    def __init__(self, name: str, outage_level: int = logging.WARNING) -> None:
        self.name, self.outage_level = name, outage_level
        self.delay = 0.0

    def run(self, round_: Callable[[], None]) -> bool:
        """True when the round went through; else sets `delay` for the caller to wait."""
        try:
            round_()
        except Exception as exc:
            if not isinstance(exc, StoreUnavailableError):  # a bug or an unexpected reply: keep going
                log.exception("unexpected error in the %s; retrying", self.name)
            elif not self.delay:  # one warning per outage
                log.log(self.outage_level, "redis unavailable (%s); retrying until it is back", exc)
            self.delay = min(max(self.delay * 2, 0.1), MAX_OUTAGE_BACKOFF_SECONDS)
            return False
        if self.delay:
            log.log(min(self.outage_level, logging.INFO), "%s recovered; resuming", self.name)
        self.delay = 0.0
        return True


def _redact_url(url: str) -> str:
    """Scheme, host and port only: webhook URLs carry secrets in credentials, paths (n8n ids) and queries."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # drop user:password, keep host[:port] as written
    return f"{parts.scheme}://{host}/..."
