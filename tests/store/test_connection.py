"""The connection (datafy/store/connection.py): the partition count is a fact of the Redis, fixed at first start."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from datafy.config import Settings
from datafy.errors import ConfigurationError
from datafy.store import Store
from devtools.redis_server import RedisServer


def test_the_partition_count_is_fixed_at_first_start(settings: Settings) -> None:
    Store(settings).connection.ping()
    other = Store(replace(settings, redis=replace(settings.redis, partitions=32)))
    with pytest.raises(ConfigurationError, match="REDIS_PARTITIONS=32 but this Redis holds 16 partitions"):
        other.connection.ping()


def test_the_memory_check_with_redis_down_keeps_its_last_answer(settings: Settings) -> None:
    """The monitor asks it before each acknowledgement: a Redis restart must reach the caller's own call as
    StoreUnavailableError (acknowledgements kept for the next round), never as a raw connection error."""
    server = RedisServer().start()
    try:
        store = Store(replace(settings, redis_url=server.url))
        assert store.connection.memory_tight() is False  # the topology is known from here on
        server.stop()
        store.connection._memory_checked = -math.inf  # due for a look now
        assert store.connection.memory_tight() is False
    finally:
        server.cleanup()
