"""Expired-key events of the timers (datafy/store/expiry.py), from a real Redis."""

from __future__ import annotations

import time

import redis

from datafy.store import Store
from datafy.store.servers import enable_expiry_events


def test_expired_events_of_keys_that_are_not_utf8_are_skipped(store: Store) -> None:
    assert all(enable_expiry_events(server) for server in store.connection.primaries())
    subscription = store.expiry_subscription()
    try:
        raw = redis.Redis.from_url(store.settings.redis_url)  # bytes in, bytes out
        raw.set(b"other-app:\xff\xfe", 1, px=10)
        raw.set(store.keys.user("alice").timer, 1, px=50)
        deadline, users = time.monotonic() + 3, []
        while time.monotonic() < deadline and "alice" not in users:
            users.append(subscription.next_user(timeout=0.2))
        assert "alice" in users
    finally:
        subscription.close()
