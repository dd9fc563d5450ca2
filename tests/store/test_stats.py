"""Per-minute delivery figures in Redis: buckets, percentile estimates, one round trip per round, expiry."""

from __future__ import annotations

import redis

from datafy.store import Store
from datafy.store.stats import LAG_BUCKETS_MS, MINUTES_KEPT, Figures, bucket_field


def test_lags_fall_in_fixed_buckets_and_late_ones_in_inf() -> None:
    assert bucket_field(-30) == "le:25"  # a clock a little ahead still counts as on time
    assert bucket_field(25) == "le:25"
    assert bucket_field(26) == "le:50"
    assert bucket_field(LAG_BUCKETS_MS[-1] + 1) == "le:inf"


def test_percentiles_are_estimated_within_their_bucket() -> None:
    figures = Figures.from_hash({"delivered": "100", "le:100": "50", "le:250": "49", "le:inf": "1"})
    assert figures.lag_ms(0.5) == 100.0  # the 50th of 100 closes the (50, 100] bucket
    assert 100 < figures.lag_ms(0.9) < 250
    assert figures.lag_ms(0.999) == float(LAG_BUCKETS_MS[-1])  # +Inf answers its lower bound
    assert Figures().lag_ms(0.5) is None


def test_a_round_is_added_to_its_minute_and_read_back_oldest_first(store: Store, redis_client: redis.Redis) -> None:
    minute = 1_790_000_040 // 60 * 60
    store.stats.record(minute, 3, [10, 20, 400], retries=2, dead_letters=1)
    store.stats.record(minute, 2, [30])  # one delivery without a lag (a replayed dead letter)
    store.stats.record(minute - 60, 1, [5000])
    store.stats.record(minute + 60, 0)  # nothing to add: no round trip, no key

    key = store.keys.stats(minute)
    assert key == f"datafy:{{stats}}:{minute}"
    assert not redis_client.exists(store.keys.stats(minute + 60))
    assert redis_client.hgetall(key) == {"delivered": "5", "le:25": "2", "le:50": "1", "le:500": "1", "retry": "2",
                                         "dead_letter": "1"}  # fmt: skip
    assert 15 * 60 < redis_client.ttl(key) <= MINUTES_KEPT * 60  # the oldest minute of the window outlives it

    minutes = store.stats.minutes(minute)
    assert [start for start, _ in minutes] == [minute - 60 * back for back in range(MINUTES_KEPT - 1, -1, -1)]
    assert minutes[-1][1].delivered == 5 and minutes[-2][1].delivered == 1
    assert minutes[-2][1].lag_ms(0.5) == 2500 + (5000 - 2500) * 0.5
    assert sum(figures.delivered for _, figures in minutes[:-2]) == 0
