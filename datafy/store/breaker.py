"""The receiver's circuit breaker, kept in Redis so that every monitor shares it, and the catch-up after it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from datafy.routes.chats import DEFAULT_ROUTE
from datafy.store.connection import Connection
from datafy.store.errors import checked, redis_errors
from datafy.store.scripts import ScriptCall

OPEN_AFTER_FAILURES = 5  # retryable failures in a row ...
QUIET_SECONDS = 5.0  # ... and no success for this long: the receiver is down, not just failing some requests
PROBE_EVERY_SECONDS = 2.0  # while it is down, one batch tests it this often
NO_RELEASE = -1.0


@dataclass(frozen=True)
class BreakerState:
    """What the breaker said after a call."""

    open_since_ms: int  # 0: closed, batches go out on their own schedules
    paused_until_ms: int  # no request before this (the next probe, or a Retry-After)
    now_ms: int
    closed_from_ms: int  # this call closed it: when it had opened (0: it did not)
    probe_granted: bool  # the caller may send the one probe
    failures: int  # retryable failures in a row
    catch_up_owed: bool = False  # it closed, and no monitor has yet reported the catch-up done
    closed_ms: int = 0  # when it last closed after an outage (0: never)

    @property
    def open(self) -> bool:
        return self.open_since_ms > 0

    @property
    def counts_attempts(self) -> bool:
        """Whether a failed attempt brings its batch nearer the dead letter: not while open, nor for QUIET_SECONDS
        after it closed (a flapping receiver would otherwise cost every caught-up batch an attempt)."""
        return not self.open and self.now_ms - self.closed_ms >= QUIET_SECONDS * 1000

    @property
    def troubled(self) -> bool:
        """Open, or failures in a row that a success should clear."""
        return self.open or self.failures > 0


CLOSED = BreakerState(0, 0, 0, 0, False, 0)


class Breaker:
    """The breaker of one webhook URL: records outcomes, grants probes, and makes waiting batches due."""

    def __init__(self, connection: Connection, webhook_url: str, webhook_timeout: float) -> None:
        self.connection = connection
        self.key = connection.keys.receiver(webhook_url)
        # A probe whose monitor died hands its turn on after this long.
        self.probe_hold_ms = int((webhook_timeout + PROBE_EVERY_SECONDS) * 1000)

    def record(
        self,
        successes: int,
        failures: int,
        pause_seconds: float = 0,
        take_probe: bool = False,
        release_seconds: float = NO_RELEASE,
        caught_up: bool = False,
    ) -> BreakerState:
        """Record a round's outcomes (a success: the receiver answered; a failure: it did not, or 5xx/429/408),
        a Retry-After pause, and ask for the probe turn; returns the state after them. `release_seconds` hands a
        held probe turn back (the next probe may go that long from now); `caught_up` reports the catch-up done."""
        args = [successes, failures, int(pause_seconds * 1000), OPEN_AFTER_FAILURES, int(QUIET_SECONDS * 1000),
                int(PROBE_EVERY_SECONDS * 1000), int(take_probe), self.probe_hold_ms,
                int(release_seconds * 1000) if release_seconds >= 0 else -1, int(caught_up)]  # fmt: skip
        with redis_errors():
            reply = self.connection.scripts.run("breaker", [self.key], args)
        open_since, paused_until, now, closed_from, granted, count, owed, closed = (int(value) for value in reply)
        return BreakerState(open_since, paused_until, now, closed_from, bool(granted), count, bool(owed), closed)

    def catch_up(self, per_partition: int = 0, routes: Iterable[str] = (DEFAULT_ROUTE,)) -> int:
        """Make the batches of `routes` (those that deliver to this URL) that wait for a retry ready now, oldest
        wait first: every one, or the oldest `per_partition` of each partition (a probe's candidates); returns
        how many."""
        keys = self.connection.keys
        calls: list[ScriptCall] = [
            ("catch_up", [keys.partition(p).ready, keys.route_retrying(p, route)], [per_partition])
            for route in routes
            for p in range(keys.partitions)
        ]
        with redis_errors():
            replies = self.connection.scripts.run_many(calls)
        return sum(checked(replies))


@dataclass(frozen=True)
class ReceiverView:
    """The breaker as stored, for the status: failures in a row, open since (0: closed), no request before."""

    failures: int
    open_since_ms: int
    paused_until_ms: int


def read_receiver(connection: Connection, key: str) -> ReceiverView:
    """The stored state of the breaker at `key` (a receiver nobody delivered to lately reads as closed)."""
    with redis_errors():
        raw = connection.client.hmget(key, "failures", "open_since_ms", "pause_until_ms", "probe_at_ms")
    failures, open_since, pause_until, probe_at = (int(value or 0) for value in raw)
    return ReceiverView(failures, open_since, max(pause_until, probe_at) if open_since else pause_until)
