"""One monitor process: a flusher seals due batches, the main loop leases ready ones for the sender and
records how each attempt went."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import suppress

from datafy import __version__
from datafy.config import Settings
from datafy.errors import ConfigurationError, StoreUnavailableError
from datafy.log import redact_url
from datafy.metrics import instruments
from datafy.monitor.flusher import Flusher
from datafy.monitor.gates import Gates
from datafy.monitor.guard import LoopGuard
from datafy.monitor.health import Heartbeat
from datafy.monitor.listener import ExpiryListener
from datafy.monitor.partitions import Assignment
from datafy.monitor.recorder import Recorder
from datafy.monitor.sender import UNKNOWN_ROUTE, Sender, Sent
from datafy.routes.table import RouteTable
from datafy.store import Store
from datafy.store.checks import check_redis
from datafy.store.outbox import ACKED_LATE

log = logging.getLogger(__name__)

STALLED_AFTER_SECONDS = 20.0  # a flusher quiet this long makes the heartbeat stop (the healthcheck then fails)
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
        self.routes = RouteTable(self.store.routes, settings)
        self.sender = Sender(s, on_finished=self.wake.set, routes=self.routes)
        self.gates = Gates(self.store, settings, self.routes)
        self.recorder = Recorder(settings, self.store)
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
        instruments.init_monitor()

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
            self.slot, s.redis_url_redacted, redact_url(s.webhook_url), s.webhook_concurrency, s.flush_poll_interval,
        )  # fmt: skip
        check_redis(self.store)
        self.routes.refresh(force=True)  # before the first lease: a batch of an unknown route waits half a second
        listener = ExpiryListener(self.store, self._expired, self.stopping)
        self.sender.start()
        listener.start()
        self.flusher.start()
        try:
            self._loop()
            if self.stop_reason:
                log.info("received %s: finishing in-flight deliveries, then stopping", self.stop_reason)
            unfinished = self._drain()
            self.recorder.write_figures(force=True)
            return unfinished
        finally:
            self.heartbeat.clear()
            with suppress(StoreUnavailableError):
                self.store.monitors.leave(self.id)
            listener.join(timeout=2)
            self.flusher.join(timeout=2)
            self.sender.stop()

    def _expired(self, user: str) -> None:
        """An expired timer: a hint for the flusher, if the user's partition is this process's to seal."""
        hint = self.flusher.hint
        # A hint already set stands for this event too: the flusher clears it before it reads the due index. In
        # a storm every process hears every event, and setting an Event takes a lock each time.
        if not hint.is_set() and self.store.keys.partition_of(user) in self.assignment.on_time:
            hint.set()

    def _loop(self) -> None:
        guard = LoopGuard("monitor loop")
        while not self.stopping.is_set():
            if not guard.run(self._round):
                self.stopping.wait(guard.delay)
                continue
            if time.monotonic() - self.flusher.last_round < STALLED_AFTER_SECONDS:
                self.heartbeat.beat()
                if time.monotonic() - self.last_beat >= BEAT_EVERY_SECONDS:
                    guard.run(self._beat)
            self.wake.wait(self.settings.flush_poll_interval)
            self.wake.clear()

    def _round(self, claiming: bool = True) -> None:
        """Record what finished and lease work for the free slots, acknowledgements and leases together in two
        round trips. Ready retries are found by this poll."""
        finished = self.sender.take_finished()
        self.in_flight -= len(finished)
        if any(sent.result.error == UNKNOWN_ROUTE for sent in finished):
            self.routes.refresh(force=True)  # a route created a moment ago
        delivered = self.unacked + [sent for sent in finished if sent.result.delivered]
        self.unacked = []
        slots = self.settings.webhook_concurrency - self.in_flight
        self.gates.settle(finished, claiming and slots > 0)
        # Attempts made while their receiver is down, or just back, do not bring a batch nearer its dead letter.
        failed = [sent for sent in finished if not sent.result.delivered]
        self.recorder.failed([sent for sent in failed if self.gates.counts_attempts(sent)], counted=True)
        self.recorder.failed([sent for sent in failed if not self.gates.counts_attempts(sent)], counted=False)
        admission = self.gates.admission()
        free = slots if claiming else 0
        try:
            acks, claims = self.store.outbox.ack_and_claim(
                [sent.claim for sent in delivered], free, self.settings.delivery_visibility_timeout,
                self.assignment.leased, admission.decide,
            )  # fmt: skip
            if admission.turns and free > len(claims):
                # A probe may be any waiting batch of its receiver: the one process holding the turn may not
                # poll that batch's partition.
                _, probes = self.store.outbox.ack_and_claim(
                    [], len(admission.turns), self.settings.delivery_visibility_timeout, None, admission.probe_only
                )
                claims += probes
        except StoreUnavailableError:
            self.unacked = delivered  # acknowledged next round; a 2xx counts even after its lease passed on
            admission.release_unused()
            raise
        admission.release_unused()
        self.recorder.delivered(
            delivered, late=[sent for sent, ack in zip(delivered, acks, strict=True) if ack == ACKED_LATE]
        )
        self.in_flight += len(claims)
        self.sender.submit(claims)

    def _beat(self) -> None:
        """Tell Redis this process is alive, take this process's share of the partitions, and see route changes."""
        self.last_beat = time.monotonic()
        self.recorder.write_figures()  # those of a quiet second, when no round wrote them
        self.routes.refresh()
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
