"""Every Redis key name, in one place.

All keys live under one prefix and carry a partition hash tag, so each script touches one Cluster slot:

    {prefix}:{{p}}:buf:{user}       list    buffered messages of the open batch, in arrival order
    {prefix}:{{p}}:meta:{user}      hash    open batch: first/last arrival, deadlines, counters, metadata
    {prefix}:{{p}}:timer:{user}     string  the "still typing" sentinel; its TTL is the silence timer
    {prefix}:{{p}}:dedupe:{user}    zset    message_id -> arrival ms, for DEDUPE_WINDOW
    {prefix}:{{p}}:rate:{user}      string  messages this minute, for RATE_LIMIT_PER_USER (expires in a minute)
    {prefix}:{{p}}:seq:{user}       string  the user's last batch sequence number
    {prefix}:{{p}}:outbox:{user}    list    sealed batch ids waiting for delivery, oldest first
    {prefix}:{{p}}:batches:{user}   hash    sealed batches: body, attempts, last status and error
    {prefix}:{{p}}:due              zset    user -> flush deadline ms (the clock of record)
    {prefix}:{{p}}:ready            zset    user -> ms when the head of its outbox may be (re)tried
    {prefix}:{{p}}:retrying         zset    user -> ms its head's wait for a retry began (catch-up order)
    {prefix}:{{p}}:dead             zset    batch_id -> ms dead-lettered
    {prefix}:{{p}}:dead:data        hash    batch_id -> dead letter record (JSON)
    {prefix}:dead-trim              string  held (a few seconds) by the one monitor trimming dead letters
    {prefix}:receiver:{id}          hash    the circuit breaker of one webhook URL (id: a hash of the URL; a day)

`p` is crc32(user) % PARTITIONS. The user id is kept verbatim after the last fixed segment: the hash
tag is the first `{...}` in the key, so braces or colons in a user id can neither move nor collide keys.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

PARTITIONS = 16


def partition_of(user: str) -> int:
    """The partition (and so the Cluster slot) a user's keys live in."""
    return zlib.crc32(user.encode()) % PARTITIONS


@dataclass(frozen=True)
class UserKeys:
    """The keys of one user, all in the user's partition."""

    buffer: str
    meta: str
    timer: str
    dedupe: str
    rate: str
    sequence: str
    outbox: str
    batches: str


@dataclass(frozen=True)
class PartitionKeys:
    """The indexes of one partition."""

    due: str
    ready: str
    retrying: str
    dead: str
    dead_data: str


class KeySpace:
    """Builds and parses key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _base(self, partition: int) -> str:
        return f"{self.prefix}:{{{partition}}}"

    def user(self, user: str) -> UserKeys:
        """All keys of `user`."""
        base = self._base(partition_of(user))
        return UserKeys(
            buffer=f"{base}:buf:{user}",
            meta=f"{base}:meta:{user}",
            timer=f"{base}:timer:{user}",
            dedupe=f"{base}:dedupe:{user}",
            rate=f"{base}:rate:{user}",
            sequence=f"{base}:seq:{user}",
            outbox=f"{base}:outbox:{user}",
            batches=f"{base}:batches:{user}",
        )

    def partition(self, partition: int) -> PartitionKeys:
        """The indexes of one partition."""
        base = self._base(partition)
        return PartitionKeys(
            due=f"{base}:due",
            ready=f"{base}:ready",
            retrying=f"{base}:retrying",
            dead=f"{base}:dead",
            dead_data=f"{base}:dead:data",
        )

    def indexes_of(self, user: str) -> PartitionKeys:
        """The indexes of the partition `user` lives in."""
        return self.partition(partition_of(user))

    def dead_trim_lock(self) -> str:
        """The lock that lets one monitor at a time trim the dead letters."""
        return f"{self.prefix}:dead-trim"

    def receiver(self, webhook_url: str) -> str:
        """The breaker of one webhook URL, shared by every monitor delivering to it (the URL may hold secrets)."""
        return f"{self.prefix}:receiver:{hashlib.sha256(webhook_url.encode()).hexdigest()[:16]}"

    def all_partitions(self) -> list[PartitionKeys]:
        """The indexes of every partition, in partition order."""
        return [self.partition(p) for p in range(PARTITIONS)]

    def user_of_timer(self, key: str) -> str | None:
        """The user whose timer `key` is, or None for a key that is not one of our timers."""
        head = f"{self.prefix}:{{"
        if not key.startswith(head):
            return None
        close = key.find("}:timer:", len(head))
        if close < 0 or not key[len(head) : close].isdigit():
            return None
        return key[close + len("}:timer:") :]

    def owned_pattern(self) -> str:
        """A SCAN pattern matching every key of this prefix (for tests and tooling)."""
        return f"{self.prefix}:*"
