"""The connection (datafy/store/connection.py): the partition count is a fact of the Redis, fixed at first start."""

from __future__ import annotations

from dataclasses import replace

import pytest

from datafy.config import Settings
from datafy.errors import ConfigurationError
from datafy.store import Store


def test_the_partition_count_is_fixed_at_first_start(settings: Settings) -> None:
    Store(settings).connection.ping()
    other = Store(replace(settings, redis=replace(settings.redis, partitions=32)))
    with pytest.raises(ConfigurationError, match="REDIS_PARTITIONS=32 but this Redis holds 16 partitions"):
        other.connection.ping()
