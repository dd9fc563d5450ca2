"""Start-up checks warn loudly about Redis settings that can lose messages."""

from __future__ import annotations

import logging

import pytest
import redis

from datafy.store import Store
from datafy.store.checks import check_redis
from datafy.store.servers import enable_expiry_events


def test_eviction_policy_and_missing_aof_are_warned_about(
    store: Store, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    redis_client.config_set("appendonly", "no")
    try:
        with caplog.at_level(logging.WARNING):
            check_redis(store)
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
        redis_client.config_set("appendonly", "yes")
    text = caplog.text
    assert "REDIS MAY EVICT BUFFERED MESSAGES" in text and "allkeys-lru" in text
    assert "appendonly is off" in text


def test_a_safe_server_gives_no_warning(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_redis(store)
    assert caplog.text == ""


def test_expiry_events_are_enabled_when_missing(store: Store, redis_client: redis.Redis) -> None:
    redis_client.config_set("notify-keyspace-events", "")
    assert all(enable_expiry_events(server) for server in store.connection.primaries())
    flags = redis_client.config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert "E" in flags and "x" in flags
