"""Redis errors (datafy/store/errors.py): what means 'Redis cannot take this now' is StoreUnavailableError."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from datafy.config import Settings
from datafy.errors import StoreUnavailableError
from datafy.store import Store
from devtools.redis_server import RedisServer
from tests.support.messages import msg


def test_redis_refusing_writes_for_lack_of_replicas_is_unavailable(settings: Settings) -> None:
    server = RedisServer().start()
    try:
        store = Store(replace(settings, redis_url=server.url))
        store.buffer.append(msg("u1", "oi", ttl_ms=1))
        store.client.config_set("min-replicas-to-write", 1)
        time.sleep(0.01)
        with pytest.raises(StoreUnavailableError, match="NOREPLICAS"):
            store.buffer.append(msg("u1", "oi"))
        with pytest.raises(StoreUnavailableError, match="NOREPLICAS"):
            store.buffer.flush_due(100)  # through a pipeline, whose errors carry a prefix
    finally:
        server.cleanup()
