"""Listens for expired timer events. They are only hints that wake the flusher early: the due index is the clock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from datafy.errors import StoreUnavailableError
from datafy.retry import backoff
from datafy.store import ExpirySubscription, Store
from datafy.store.servers import enable_expiry_events, server_name

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
FIRST_WAIT_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0


class ExpiryListener(threading.Thread):
    """Subscribes to `__keyevent@<db>__:expired`, resubscribing by itself after any disconnect."""

    def __init__(self, store: Store, on_expired: Callable[[str], None], stop: threading.Event) -> None:
        super().__init__(name="expiry-listener", daemon=True)
        self.store = store
        self.on_expired = on_expired
        self.stop = stop
        self.warned_refusing: set[str] = set()  # servers already warned about, once each

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            subscription: ExpirySubscription | None = None
            try:
                self._enable_events()  # on every (re)subscribe: a restarted Redis may have lost the setting
                subscription = self.store.expiry_subscription()
                log.info("subscribed to %s", subscription.channel)
                failures = 0
                while not self.stop.is_set():
                    user = subscription.next_user(timeout=POLL_SECONDS)
                    if user is not None:
                        self.on_expired(user)
            except Exception as exc:  # resubscribe after anything: the listener never dies
                if not isinstance(exc, StoreUnavailableError):
                    log.exception("expiry listener error; resubscribing")
                else:  # one warning per outage; the retries in between only at debug level
                    level = logging.DEBUG if failures else logging.WARNING
                    log.log(level, "expiry subscription lost (%s); resubscribing", exc)
                failures += 1
                self.stop.wait(backoff(failures, FIRST_WAIT_SECONDS, MAX_BACKOFF_SECONDS))
            finally:
                if subscription is not None:
                    subscription.close()

    def _enable_events(self) -> None:
        for server in (server_name(s) for s in self.store.connection.primaries() if not enable_expiry_events(s)):
            if server not in self.warned_refusing:
                self.warned_refusing.add(server)
                log.warning(
                    "cannot enable notify-keyspace-events on %s (CONFIG SET refused); set notify-keyspace-events Ex "
                    "in the Redis settings. Flushes still happen on time via the due index.", server
                )  # fmt: skip
