"""Every Redis key name, in one place.

All keys live under one prefix and carry a partition hash tag, so each script touches one Cluster slot:

    {prefix}:{{p}}:buf:{user}       list    buffered messages of the open batch, in arrival order
    {prefix}:{{p}}:meta:{user}      hash    open batch: first/last arrival, deadlines, counters, metadata
    {prefix}:{{p}}:timer:{user}     string  the "still typing" sentinel; its TTL is the silence timer
    {prefix}:{{p}}:dedupe:{user}    zset    message_id -> arrival ms, for DEDUPE_WINDOW
    {prefix}:{{p}}:rate:{user}      string  messages this minute, for RATE_LIMIT_PER_USER (expires in a minute)
    {prefix}:{{p}}:keyrate:{key}    string  messages this minute with one API key in this partition, for
                                    RATE_LIMIT_PER_KEY (key: a hash of the API key; expires in a minute)
    {prefix}:{{p}}:seq:{user}       string  the user's last batch sequence number
    {prefix}:{{p}}:sealed:{user}    string  messages of the user sealed so far (a batch's `through` is this count
                                    once it was sealed: the answer guard's "newer messages")
    {prefix}:{{p}}:answer:{batch_id}:{user}   hash  a delivered batch, readable for ANSWER_WINDOW: state
                                    (delivered, answered, unanswered), n (sequence:through), body
    {prefix}:{{p}}:hold:{user}      string  the batch whose verdict the chat waits for (await_answer; expires after
                                    the answer timeout)
    {prefix}:{{p}}:pause:{user}     string  a person took the chat over (expires when the pause ends)
    {prefix}:{{p}}:alias:{id}       string  the chat another id names (a WhatsApp LID -> the phone's chat)
    {prefix}:{{p}}:outbox:{user}    list    sealed batch ids waiting for delivery, oldest first
    {prefix}:{{p}}:batches:{user}   hash    sealed batches: body, attempts, last status and error
    {prefix}:{{p}}:due              zset    user -> flush deadline ms (the clock of record)
    {prefix}:{{p}}:ready            zset    user -> ms when the head of its outbox may be (re)tried
    {prefix}:{{p}}:retrying         zset    user -> ms its head's wait for a retry began (catch-up order), route
                                    `default`; {prefix}:{{p}}:retrying:{route} for any other route (a receiver that
                                    is down holds back only its own routes)
    {prefix}:{{p}}:held             zset    user -> ms its hold ends (chats waiting for a verdict; for counting)
    {prefix}:{{p}}:paused           zset    user -> ms its pause ends (chats a person took over; for counting)
    {prefix}:{{p}}:dead             zset    batch_id -> ms dead-lettered
    {prefix}:{{p}}:dead:data        hash    batch_id -> dead letter record (JSON)
    {prefix}:dead-trim              string  held (a few seconds) by the one monitor trimming dead letters
    {prefix}:receiver:{id}          hash    the circuit breaker of one webhook URL (id: a hash of the URL; a day)
    {prefix}:partitions             string  REDIS_PARTITIONS, fixed at first start
    {prefix}:{{monitors}}           zset    monitor process id -> its last beat ms (members expire by score)
    {prefix}:{{monitors}}:{id}      hash    one monitor process: host, pid, version, started, in flight (expires)
    {prefix}:{{p}}:routed:{route}   zset    chat -> ms its batch opened: a route's chats pending in this partition
                                    (for the route's max_pending_chats; cleaned lazily when near the cap)
    {prefix}:{{routes}}:rows        hash    route name -> the route (JSON; a deleted one stays, marked)
    {prefix}:{{routes}}:keys        hash    hash of an API key -> "<ingest|admin> <route name>"
    {prefix}:{{routes}}:match       hash    "<evolution_instance|whatsapp_phone_number_id>:<value>" -> route name
    {prefix}:{{routes}}:version     string  bumped by every change to the routes (processes reload on a change)
    {prefix}:{{stats}}:{minute}     hash    deliveries, retries, dead letters and the arrival-lag histogram of one
                                    minute (minute: unix seconds of its start; expires after 16 minutes)

`user` is the chat id (datafy/routes/chats.py): the user id itself for the route `default`, qualified by the
route for any other. `p` is crc32(user) % REDIS_PARTITIONS (16 unless set). The user id is kept verbatim after
the last fixed segment: the hash tag is the first `{...}` in the key, so braces or colons in a user id can
neither move nor collide keys.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from datafy.config.redis import DEFAULT_PARTITIONS
from datafy.routes.chats import DEFAULT_ROUTE, route_of

PARTITIONS = DEFAULT_PARTITIONS


def partition_of(user: str, partitions: int = PARTITIONS) -> int:
    """The partition (and so the Cluster slot) a user's keys live in."""
    return zlib.crc32(user.encode()) % partitions


@dataclass(frozen=True)
class UserKeys:
    """The keys of one user, all in the user's partition."""

    buffer: str
    meta: str
    timer: str
    dedupe: str
    rate: str
    sequence: str
    sealed: str
    hold: str
    pause: str
    outbox: str
    batches: str


@dataclass(frozen=True)
class PartitionKeys:
    """The indexes of one partition."""

    due: str
    ready: str
    retrying: str
    held: str
    paused: str
    dead: str
    dead_data: str


@dataclass(frozen=True)
class RouteKeys:
    """The route table, on one slot."""

    rows: str
    keys: str
    match: str
    version: str


class KeySpace:
    """Builds and parses key names under one prefix."""

    def __init__(self, prefix: str, partitions: int = PARTITIONS) -> None:
        self.prefix = prefix
        self.partitions = partitions

    def partition_of(self, user: str) -> int:
        """The partition `user` lives in."""
        return partition_of(user, self.partitions)

    def _base(self, partition: int) -> str:
        return f"{self.prefix}:{{{partition}}}"

    def user(self, user: str) -> UserKeys:
        """All keys of `user`."""
        base = self._base(self.partition_of(user))
        return UserKeys(
            buffer=f"{base}:buf:{user}",
            meta=f"{base}:meta:{user}",
            timer=f"{base}:timer:{user}",
            dedupe=f"{base}:dedupe:{user}",
            rate=f"{base}:rate:{user}",
            sequence=f"{base}:seq:{user}",
            sealed=f"{base}:sealed:{user}",
            hold=f"{base}:hold:{user}",
            pause=f"{base}:pause:{user}",
            outbox=f"{base}:outbox:{user}",
            batches=f"{base}:batches:{user}",
        )

    def answer(self, user: str, batch_id: str) -> str:
        """A delivered batch of `user`, kept for ANSWER_WINDOW (the guard and the carry-over read it)."""
        return f"{self._base(self.partition_of(user))}:answer:{batch_id}:{user}"

    def alias(self, alias: str) -> str:
        """The chat that `alias` (another id of the same customer) names, in the alias's partition."""
        return f"{self._base(self.partition_of(alias))}:alias:{alias}"

    def key_rate(self, user: str, key_id: str) -> str:
        """The counter of messages sent with one API key (`key_id`, a hash) in `user`'s partition."""
        return f"{self._base(self.partition_of(user))}:keyrate:{key_id}"

    def partition(self, partition: int) -> PartitionKeys:
        """The indexes of one partition."""
        base = self._base(partition)
        return PartitionKeys(
            due=f"{base}:due",
            ready=f"{base}:ready",
            retrying=f"{base}:retrying",
            held=f"{base}:held",
            paused=f"{base}:paused",
            dead=f"{base}:dead",
            dead_data=f"{base}:dead:data",
        )

    def polled(self, partitions: Mapping[int, int] | None) -> list[tuple[PartitionKeys, int]]:
        """The indexes of the partitions to poll, each with how overdue its work must be (ms); None: all, on time."""
        if partitions is None:
            return [(self.partition(p), 0) for p in range(self.partitions)]
        return [(self.partition(p), overdue_ms) for p, overdue_ms in sorted(partitions.items())]

    def retrying_of(self, user: str) -> str:
        """The `retrying` index that `user`'s batches wait in: its route's, in its partition."""
        return self.route_retrying(self.partition_of(user), route_of(user))

    def route_retrying(self, partition: int, route: str) -> str:
        """The `retrying` index of `route` in one partition."""
        base = self._base(partition)
        return f"{base}:retrying" if route == DEFAULT_ROUTE else f"{base}:retrying:{route}"

    def indexes_of(self, user: str) -> PartitionKeys:
        """The indexes of the partition `user` lives in."""
        return self.partition(self.partition_of(user))

    def routed(self, user: str, route: str) -> str:
        """The chats of `route` pending in `user`'s partition."""
        return f"{self._base(self.partition_of(user))}:routed:{route}"

    def routes(self) -> RouteKeys:
        """The route table."""
        base = f"{self.prefix}:{{routes}}"
        return RouteKeys(rows=f"{base}:rows", keys=f"{base}:keys", match=f"{base}:match", version=f"{base}:version")

    def dead_trim_lock(self) -> str:
        """The lock that lets one monitor at a time trim the dead letters."""
        return f"{self.prefix}:dead-trim"

    def partition_count(self) -> str:
        """Where REDIS_PARTITIONS is kept, so that no process starts with another count."""
        return f"{self.prefix}:partitions"

    def monitors(self) -> str:
        """The index of live monitor processes; their records share its hash tag (one slot, one script)."""
        return f"{self.prefix}:{{monitors}}"

    def monitor(self, monitor_id: str) -> str:
        """The record of one monitor process."""
        return f"{self.prefix}:{{monitors}}:{monitor_id}"

    def stats(self, minute: int) -> str:
        """The delivery figures of the minute starting at unix second `minute`; every minute shares one slot."""
        return f"{self.stats_prefix()}:{minute}"

    def stats_prefix(self) -> str:
        """What every per-minute figures key starts with."""
        return f"{self.prefix}:{{stats}}"

    def receiver(self, webhook_url: str) -> str:
        """The breaker of one webhook URL, shared by every monitor delivering to it (the URL may hold secrets)."""
        return f"{self.prefix}:receiver:{hashlib.sha256(webhook_url.encode()).hexdigest()[:16]}"

    def all_partitions(self) -> list[PartitionKeys]:
        """The indexes of every partition, in partition order."""
        return [self.partition(p) for p in range(self.partitions)]

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
