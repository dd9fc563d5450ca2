"""Per-minute delivery figures kept in Redis: deliveries, retries, dead letters and an arrival-lag histogram.

Each monitor process adds its round's figures to the current minute's hash in one pipelined round trip; the
status reads the last 16 hashes in another. Lag is the arrival of a batch at the receiver minus its deadline
(the monitor's clock against Redis's: keep them in sync with NTP). Percentiles are estimated from the buckets,
as Prometheus's histogram_quantile does.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

from datafy.metrics import LAG_BUCKETS_MS
from datafy.store.connection import Connection
from datafy.store.errors import redis_errors

MINUTES_KEPT = 16  # the window of 15 minutes, and the one before it that still overlaps the last 15 * 60 s
OUTCOMES = ("delivered", "retry", "dead_letter")


def bucket_field(lag_ms: float) -> str:
    """The hash field of the lag bucket `lag_ms` falls in: le:<upper bound ms>, or le:inf."""
    i = bisect.bisect_left(LAG_BUCKETS_MS, lag_ms)
    return f"le:{LAG_BUCKETS_MS[i]}" if i < len(LAG_BUCKETS_MS) else "le:inf"


@dataclass
class Figures:
    """Deliveries and lag counts of a span of time (counts may be fractional while being weighted)."""

    delivered: float = 0.0
    retry: float = 0.0
    dead_letter: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(LAG_BUCKETS_MS) + 1))

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Figures:
        """The figures of one minute's hash."""
        figures = cls(*(float(raw.get(name, 0)) for name in OUTCOMES))
        for i, bound in enumerate([*LAG_BUCKETS_MS, "inf"]):
            figures.buckets[i] = float(raw.get(f"le:{bound}", 0))
        return figures

    def add(self, other: Figures, weight: float = 1.0) -> None:
        """Add `other`'s counts, scaled by `weight`, to these."""
        self.delivered += other.delivered * weight
        self.retry += other.retry * weight
        self.dead_letter += other.dead_letter * weight
        self.buckets = [mine + theirs * weight for mine, theirs in zip(self.buckets, other.buckets, strict=True)]

    def lag_ms(self, quantile: float) -> float | None:
        """The estimated lag under which `quantile` of the deliveries arrived (linear within a bucket); None
        without deliveries. The +Inf bucket answers its lower bound."""
        total = sum(self.buckets)
        if total <= 0:
            return None
        rank, seen, lower = quantile * total, 0.0, 0.0
        for i, count in enumerate(self.buckets):
            if count and seen + count >= rank:
                if i == len(LAG_BUCKETS_MS):
                    return float(lower)
                upper = LAG_BUCKETS_MS[i]
                return round(lower + (upper - lower) * (rank - seen) / count, 1)
            seen += count
            lower = LAG_BUCKETS_MS[i] if i < len(LAG_BUCKETS_MS) else lower
        return float(lower)


class Stats:
    """The per-minute figures of every monitor process, added up in Redis."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.keys = connection.keys

    def record(
        self, minute: int, delivered: int, lags_ms: Iterable[float] = (), retries: int = 0, dead_letters: int = 0
    ) -> None:
        """Add one round's outcomes to the minute starting at unix second `minute`, in one round trip. `lags_ms`
        holds the lag of the deliveries that have one (a replayed dead letter has none worth counting)."""
        counts: dict[str, int] = {}
        for lag in lags_ms:
            name = bucket_field(lag)
            counts[name] = counts.get(name, 0) + 1
        outcomes = (("delivered", delivered), ("retry", retries), ("dead_letter", dead_letters))
        counts.update({name: n for name, n in outcomes if n})
        if not counts:
            return
        key = self.keys.stats(minute)
        with redis_errors():
            pipe = self.connection.client.pipeline(transaction=False)
            for name, n in counts.items():
                pipe.hincrby(key, name, n)
            pipe.expire(key, MINUTES_KEPT * 60)
            pipe.execute()

    def minutes(self, minute: int) -> list[tuple[int, Figures]]:
        """(minute, figures) of the MINUTES_KEPT minutes up to the one starting at `minute`, oldest first."""
        starts = [minute - 60 * back for back in range(MINUTES_KEPT - 1, -1, -1)]
        with redis_errors():
            pipe = self.connection.client.pipeline(transaction=False)
            for start in starts:
                pipe.hgetall(self.keys.stats(start))
            replies = pipe.execute()
        return [(start, Figures.from_hash(raw)) for start, raw in zip(starts, replies, strict=True)]
