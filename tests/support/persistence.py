"""Waiting for Redis to have written what a kill -9 must not lose."""

from __future__ import annotations

import time

import redis


def wait_for_aof_written(client: redis.Redis) -> None:
    """Until the append-only file holds every write: a kill -9 loses nothing the OS has (with appendfsync
    everysec, Redis may hold its write back for up to 2 s while an earlier fsync runs on a slow disk)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info.get("aof_buffer_length") and not info.get("aof_pending_bio_fsync"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the append-only file was not written in 10 s: {info}")
