"""The monitor's main loop: seal due batches, lease ready ones, deliver them from a thread pool."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from urllib.parse import urlsplit

from datafy.checks import check_redis
from datafy.config import Settings
from datafy.errors import ConfigurationError, StoreUnavailableError
from datafy.monitor.delivery import Deliverer
from datafy.monitor.health import Heartbeat
from datafy.monitor.listener import ExpiryListener
from datafy.store import Store
from datafy.webhook import WebhookClient

log = logging.getLogger(__name__)

FLUSH_BATCH_PER_PARTITION = 1000
MAX_OUTAGE_BACKOFF_SECONDS = 2.0


class Monitor:
    """One monitor process. Several may share a Redis: leases keep them from delivering a batch twice."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        if not settings.webhook_url:
            raise ConfigurationError("WEBHOOK_URL is required: the monitor has nowhere to deliver batches")
        self.settings = settings
        self.store = store or Store(settings)
        self.webhook = WebhookClient(settings.webhook_url, settings.webhook_timeout, settings.webhook_concurrency)
        self.deliverer = Deliverer(settings, self.store, self.webhook)
        self.stopping = threading.Event()
        self.wake = threading.Event()  # run the loop now rather than at the next poll
        self.hint = threading.Event()  # an expired event came: flush now
        # Claims are batched: one round trip leases work for several free workers.
        self._claim_batch = max(1, settings.webhook_concurrency // 4)
        self.in_flight: set[Future[None]] = set()
        self._in_flight_lock = threading.Lock()
        self.heartbeat = Heartbeat()

    def stop(self) -> None:
        """Ask the loop to stop claiming work; safe to call from a signal handler."""
        self.stopping.set()
        self.wake.set()

    def run(self) -> int:
        """Run until stop(); returns how many deliveries were still in flight when the grace period ran out."""
        s = self.settings
        log.info(
            "monitor starting redis=%s webhook=%s concurrency=%d poll=%.3fs",
            s.redis_url_redacted, _redact_url(s.webhook_url), s.webhook_concurrency, s.flush_poll_interval,
        )  # fmt: skip
        check_redis(self.store)
        listener = ExpiryListener(self.store, self._expired, self.stopping)
        listener.start()
        pool = ThreadPoolExecutor(max_workers=s.webhook_concurrency, thread_name_prefix="deliver")
        try:
            self._loop(pool)
        finally:
            self.heartbeat.clear()
            listener.join(timeout=2)
            unfinished = self._drain(pool)
            self.webhook.close()
        return unfinished

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        outage_backoff, next_flush = 0.0, 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() >= next_flush or self.hint.is_set():
                    self.hint.clear()
                    self.flush_due()
                    next_flush = time.monotonic() + self.settings.flush_poll_interval
                self.claim(pool)
                self.heartbeat.beat()
                if outage_backoff:
                    log.info("monitor loop recovered; resuming")
                outage_backoff = 0.0
            except Exception as exc:
                if not isinstance(exc, StoreUnavailableError):  # a bug or an unexpected reply: keep going
                    log.exception("unexpected error in the monitor loop; retrying")
                elif not outage_backoff:  # one warning per outage
                    log.warning("redis unavailable (%s); retrying until it is back", exc)
                outage_backoff = min(max(outage_backoff * 2, 0.1), MAX_OUTAGE_BACKOFF_SECONDS)
                self.stopping.wait(outage_backoff)
                continue
            self.wake.wait(max(0.0, next_flush - time.monotonic()))
            self.wake.clear()

    def flush_due(self) -> None:
        """Seal every batch whose deadline has passed into its user's outbox."""
        for flushed in self.store.flush_due(FLUSH_BATCH_PER_PARTITION):
            log.debug("flushed user=%s seq=%d messages=%d", flushed.user, flushed.sequence, flushed.count)

    def claim(self, pool: ThreadPoolExecutor) -> None:
        """Lease ready batches for the free workers and start delivering them."""
        free = self.settings.webhook_concurrency - len(self.in_flight)
        for claim in self.store.claim_ready(free, self.settings.delivery_visibility_timeout):
            future = pool.submit(self.deliverer.deliver, claim)
            with self._in_flight_lock:
                self.in_flight.add(future)
            future.add_done_callback(self._finished)

    def _expired(self, user: str) -> None:
        self.hint.set()
        self.wake.set()

    def _finished(self, future: Future[None]) -> None:
        with self._in_flight_lock:
            self.in_flight.discard(future)
            free = self.settings.webhook_concurrency - len(self.in_flight)
        if free >= self._claim_batch:
            self.wake.set()  # enough workers are free to be worth a claim round trip before the next poll

    def _drain(self, pool: ThreadPoolExecutor) -> int:
        with self._in_flight_lock:
            pending = set(self.in_flight)
        if pending:
            log.info("stopping: waiting up to %.0fs for %d delivery(ies)", self.settings.shutdown_grace, len(pending))
        _, not_done = wait(pending, timeout=self.settings.shutdown_grace)
        pool.shutdown(wait=not not_done, cancel_futures=True)
        if not_done:
            log.warning("stopping with %d delivery(ies) unfinished; they are retried after their lease", len(not_done))
        else:
            log.info("monitor stopped cleanly")
        return len(not_done)


def _redact_url(url: str) -> str:
    """Scheme, host and port only: webhook URLs carry secrets in credentials, paths (n8n ids) and queries."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # drop user:password, keep host[:port] as written
    return f"{parts.scheme}://{host}/..."
