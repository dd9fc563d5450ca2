"""The only module that talks to Redis: typed operations over the key space and the Lua scripts."""

from __future__ import annotations

import json
import logging
import math
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from datafy.config import Settings
from datafy.errors import StoreUnavailableError
from datafy.keys import KeySpace, PartitionKeys, UserKeys
from datafy.model import AppendResult, Claim, FlushedBatch, IncomingMessage, compact_json

log = logging.getLogger(__name__)

SEQUENCE_TTL_SECONDS = 30 * 86400
TRIM_LOCK_MS = 5000
REPORT_EVERY_SECONDS = 60  # a user whose script keeps failing is logged at most this often
_SCRIPTS = ("append", "flush", "typing", "discard", "claim", "ack", "retry", "bury", "replay")


def new_batch_id() -> str:
    """A unique batch id; it names the batch for its whole life, retries and replays included."""
    return uuid.uuid4().hex


def is_batch_id(text: str) -> bool:
    """Whether `text` has the shape new_batch_id() gives (32 lowercase hex digits)."""
    return len(text) == 32 and all(ch in "0123456789abcdef" for ch in text)


# Error replies that mean "not now" (memory, persistence, loading, failover, a busy script), not "wrong".
_UNAVAILABLE_REPLIES = ("OOM", "MISCONF", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "BUSY")


def _as_unavailable(exc: Exception) -> StoreUnavailableError | None:
    """StoreUnavailableError when `exc` means 'Redis cannot take this now', else None (a bug: it propagates)."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError)):
        return StoreUnavailableError(f"redis unavailable: {type(exc).__name__}: {exc}")
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        # A script fails at its first allocating write, before it changed anything: nothing half-done.
        return StoreUnavailableError(f"redis is out of memory (maxmemory): {exc}")
    if isinstance(exc, redis.ResponseError):
        text = str(exc).rsplit(" of pipeline caused error: ", 1)[-1]  # a pipeline prefixes the reply
        if text.startswith(_UNAVAILABLE_REPLIES):
            return StoreUnavailableError(f"redis refused the write: {text}")
    return None


@contextmanager
def _redis_errors() -> Iterator[None]:
    """Raise StoreUnavailableError for 'Redis cannot take this now'; anything else propagates."""
    try:
        yield
    except redis.RedisError as exc:
        unavailable = _as_unavailable(exc)
        if unavailable is not None:
            raise unavailable from exc
        raise


@dataclass(frozen=True)
class ChatSnapshot:
    """A pending (open) batch as the admin API shows it."""

    user: str
    items: list[tuple[int, dict[str, Any]]]
    flush_at_ms: int
    first_ms: int


@dataclass(frozen=True)
class DeadLetter:
    """A batch that could not be delivered."""

    batch_id: str
    body: str
    info: dict[str, Any]


class Store:
    """Redis operations of redis-datafy. Thread-safe: one instance serves every thread of a process."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.keys = KeySpace(settings.redis_prefix)
        self.client: redis.Redis = client or redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=10,
            health_check_interval=30,
            max_connections=settings.webhook_concurrency + 16,
            # No silent re-sends: an append re-sent after a timeout could store a message twice. Callers
            # decide instead (the API answers 503 and the client retries; the monitor backs off).
            retry=Retry(NoBackoff(), 0),
        )
        self._reported: dict[str, float] = {}  # user -> when its failing script was last logged
        library = _read_script("_lib")
        self._scripts: dict[str, Script] = {
            name: self.client.register_script(library + "\n" + _read_script(name)) for name in _SCRIPTS
        }

    # ---- health and server facts ----

    def ping(self) -> None:
        """Raise StoreUnavailableError unless Redis answers."""
        with _redis_errors():
            self.client.ping()

    def now_ms(self) -> int:
        """Redis server time, the clock every deadline is measured on."""
        with _redis_errors():
            seconds, micros = self.client.time()
        return seconds * 1000 + micros // 1000

    def server_config(self, name: str) -> str | None:
        """A CONFIG GET value, or None when CONFIG is not allowed (managed Redis)."""
        try:
            with _redis_errors():
                return self.client.config_get(name).get(name)
        except redis.ResponseError:
            return None

    def enable_expiry_events(self) -> bool:
        """Ask Redis to publish expired events; False when CONFIG SET is not allowed."""
        current = self.server_config("notify-keyspace-events")
        if current is not None and "E" in current and ("x" in current or "A" in current):
            return True
        try:
            with _redis_errors():
                self.client.config_set("notify-keyspace-events", (current or "") + "Ex")
            return True
        except redis.ResponseError:
            return False

    def server_version(self) -> str:
        """The server's name and version, e.g. 'valkey 8.1.8'."""
        with _redis_errors():
            info = self.client.info("server")
        if "valkey_version" in info:
            return f"valkey {info['valkey_version']}"
        return f"redis {info.get('redis_version', '?')}"

    # ---- the open batch (API side) ----

    def append(self, msg: IncomingMessage) -> AppendResult:
        """Append one message, reset the user's timer and seal the batch if a flush condition is met."""
        s = self.settings
        item = msg.item_json()
        meta_args: list[str] = []
        for name, value in msg.metadata.items():
            meta_args += [compact_json(name), compact_json(value)]
        args = [
            msg.user,
            compact_json(msg.user),
            item,
            len(item.encode()),
            msg.ttl_ms,
            msg.max_wait_ms,
            msg.max_messages,
            s.max_batch_messages,
            s.max_batch_bytes,
            msg.flush_reason,
            msg.message_id or "",
            int(s.dedupe_window * 1000),
            new_batch_id(),
            SEQUENCE_TTL_SECONDS,
            *meta_args,
        ]
        with _redis_errors():
            keys = [*self._user_keys(msg.user), self.keys.user(msg.user).dedupe]
            reply = self._scripts["append"](keys=keys, args=args)
        status = reply[0]
        if status == "flushed":
            return AppendResult("flushed", int(reply[1]), int(reply[4]), batch_id=reply[2], sequence=int(reply[3]))
        return AppendResult(status, int(reply[1]), flush_at_ms=int(reply[2]))

    def extend(self, user: str, ttl_ms: int) -> int | None:
        """Push an open batch's deadline to now + ttl (never past max_wait); None when nothing is open."""
        k = self.keys.user(user)
        with _redis_errors():
            found, deadline = self._scripts["typing"](keys=[k.meta, k.timer, self._due(user)], args=[user, ttl_ms])
        return int(deadline) if found else None

    def flush(self, user: str, reason: str = "manual") -> FlushedBatch | None:
        """Seal a user's open batch now, whatever its deadline; None when nothing is open."""
        with _redis_errors():
            reply = self._scripts["flush"](keys=self._user_keys(user), args=self._flush_args(user, reason))
        return FlushedBatch(user, int(reply[1]), int(reply[2])) if reply[0] == 1 else None

    def discard(self, user: str) -> list[tuple[int, dict[str, Any]]]:
        """Drop a user's open batch; returns the dropped entries (received ms, stored item)."""
        k = self.keys.user(user)
        with _redis_errors():
            entries = self._scripts["discard"](keys=[k.buffer, k.meta, k.timer, self._due(user)], args=[user])
        return [_decode_entry(entry) for entry in entries]

    def peek(self, user: str) -> ChatSnapshot | None:
        """The user's open batch, or None."""
        k = self.keys.user(user)
        with _redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.lrange(k.buffer, 0, -1).hmget(k.meta, "first_ms").zscore(self._due(user), user)
            entries, (first_ms,), deadline = pipe.execute()
        if not entries or deadline is None:
            return None
        return ChatSnapshot(user, [_decode_entry(e) for e in entries], int(deadline), int(first_ms or 0))

    def pending_chats(self, offset: int, limit: int) -> tuple[int, list[tuple[str, int]]]:
        """(total, page) of open batches as (user, flush_at_ms), soonest first."""
        with _redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.zcard(part.due)
                pipe.zrange(part.due, 0, offset + limit - 1, withscores=True)
            replies = pipe.execute()
        total = sum(replies[0::2])
        merged = sorted(((user, int(score)) for page in replies[1::2] for user, score in page), key=lambda p: p[1])
        return total, merged[offset : offset + limit]

    # ---- the monitor's side: sealing due batches and delivering them ----

    def flush_due(self, limit: int) -> list[FlushedBatch]:
        """Seal every open batch whose deadline has passed (up to `limit` per partition)."""
        now = self.now_ms()
        with _redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.zrangebyscore(part.due, "-inf", now, start=0, num=limit)
            candidates = [user for page in pipe.execute() for user in page]
            if not candidates:
                return []
            calls = [(self._user_keys(user), self._flush_args(user, "")) for user in candidates]
            replies = self._per_user(candidates, self._run_many("flush", calls), "flush")
        return [
            FlushedBatch(u, int(r[1]), int(r[2])) for u, r in zip(candidates, replies, strict=True) if r and r[0] == 1
        ]

    def claim_ready(self, limit: int, lease_seconds: float) -> list[Claim]:
        """Lease up to `limit` batches that are ready for a delivery attempt, oldest first per user."""
        if limit <= 0:
            return []
        now = self.now_ms()
        parts = self.keys.all_partitions()
        random.shuffle(parts)  # no partition always goes first when there is more work than slots
        with _redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for part in parts:
                pipe.zrangebyscore(part.ready, "-inf", now, start=0, num=limit)
            candidates = [user for page in pipe.execute() for user in page][:limit]
            if not candidates:
                return []
            tokens = [uuid.uuid4().hex for _ in candidates]
            calls = [
                (self._outbox_keys(user), [user, int(lease_seconds * 1000), token])
                for user, token in zip(candidates, tokens, strict=True)
            ]
            replies = self._per_user(candidates, self._run_many("claim", calls), "claim")
        return [
            Claim(user, r[0], r[1], int(r[2]), token)
            for user, token, r in zip(candidates, tokens, replies, strict=True)
            if r  # None: another monitor took it first, it was not ready after all, or its script failed
        ]

    def _per_user(self, users: list[str], replies: list[Any], operation: str) -> list[Any]:
        """The pipeline replies, one per user, with a failed script's reply as None, so that one user's failing
        script cannot stall every other user: an 'unavailable' reply raises, any other error is logged (once a
        minute per user) and skipped."""
        for user, reply in zip(users, replies, strict=True):
            if not isinstance(reply, Exception):
                continue
            unavailable = _as_unavailable(reply)
            if unavailable is not None:
                raise unavailable from reply
            if time.monotonic() - self._reported.get(user, -math.inf) >= REPORT_EVERY_SECONDS:
                self._reported[user] = time.monotonic()
                log.error("%s failed for user=%s, skipping it; other users go on: %s", operation, user, reply)
        return [None if isinstance(reply, Exception) else reply for reply in replies]

    def ack(self, claim: Claim) -> bool:
        """The batch was delivered: remove it and free the user's next batch."""
        return self.ack_many([claim])[0]

    def ack_many(self, claims: list[Claim]) -> list[bool]:
        """Acknowledge several delivered batches in one round trip; False where one was already acknowledged."""
        calls = [(self._outbox_keys(claim.user), [claim.user, claim.batch_id]) for claim in claims]
        with _redis_errors():
            replies = self._per_user([claim.user for claim in claims], self._run_many("ack", calls), "ack")
        return [bool(reply) for reply in replies]

    def _run_many(self, name: str, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run script `name` once per (keys, args) in one pipelined round trip; a failed call's reply is its error.

        EVALSHA straight into the pipeline: redis-py's own script pipelining first asks SCRIPT EXISTS, a
        round trip more for every pipeline. A server that lost the script (restarted) gets it loaded once and
        the calls it refused run again (NOSCRIPT means the call did not run).
        """
        script = self._scripts[name]
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            for i in todo:
                keys, args = calls[i]
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            for i, reply in zip(todo, pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
            todo = [i for i in todo if isinstance(replies[i], redis.exceptions.NoScriptError)]
            if not todo:
                break
            script.sha = self.client.script_load(script.script)
        return replies

    def retry_later(self, claim: Claim, delay_seconds: float, status: int | None, error: str) -> bool:
        """Record a failed attempt and schedule the next one; False if our lease was lost meanwhile."""
        args = [claim.user, claim.batch_id, claim.token, int(delay_seconds * 1000), status or 0, error]
        with _redis_errors():
            return bool(self._scripts["retry"](keys=self._outbox_keys(claim.user), args=args))

    def bury(self, claim: Claim, status: int | None, error: str) -> tuple[bool, int]:
        """Move the batch to the dead letters; returns (moved, how many old dead letters were trimmed)."""
        k = self.keys.user(claim.user)
        part = self.keys.indexes_of(claim.user)
        args = [
            claim.user,
            compact_json(claim.user),
            claim.batch_id,
            claim.token,
            json.dumps(status),
            compact_json(error),
        ]
        keys = [part.ready, k.outbox, k.batches, part.dead, part.dead_data]
        with _redis_errors():
            moved = bool(self._scripts["bury"](keys=keys, args=args))
        if not moved:
            return False, 0
        try:
            return True, self.trim_dead_letters()
        except StoreUnavailableError as exc:  # the batch is buried; the next bury trims
            log.warning("could not trim dead letters: %s", exc)
            return True, 0

    def trim_dead_letters(self) -> int:
        """Drop the oldest dead letters beyond DEAD_LETTER_MAX, over all partitions; returns how many went."""
        parts, lock = self.keys.all_partitions(), self.keys.dead_trim_lock()
        with _redis_errors():
            # One trimmer at a time: two counting at once would both drop "the oldest" and drop too many.
            # A monitor that finds the lock taken leaves the excess to the next bury.
            if not self.client.set(lock, "1", nx=True, px=TRIM_LOCK_MS):
                return 0
            try:
                return self._trim_dead_letters(parts)
            finally:
                self.client.delete(lock)

    def _trim_dead_letters(self, parts: list[PartitionKeys]) -> int:
        """The trim itself; the caller holds the lock and maps Redis errors."""
        pipe = self.client.pipeline(transaction=False)
        for part in parts:
            pipe.zcard(part.dead)
        excess = sum(pipe.execute()) - self.settings.dead_letter_max
        if excess <= 0:
            return 0
        for part in parts:
            pipe.zrange(part.dead, 0, excess - 1, withscores=True)
        candidates = [
            (score, bid, part) for part, page in zip(parts, pipe.execute(), strict=True) for bid, score in page
        ]
        for _, batch_id, part in sorted(candidates, key=lambda entry: entry[0])[:excess]:
            pipe.zrem(part.dead, batch_id)
            pipe.hdel(part.dead_data, batch_id, f"i:{batch_id}")
        return sum(pipe.execute()[0::2])

    # ---- dead letters (admin) ----

    def dead_letters(self, offset: int, limit: int) -> tuple[int, list[DeadLetter]]:
        """(total, page) of dead letters, newest first."""
        with _redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.zcard(part.dead)
                pipe.zrevrange(part.dead, 0, offset + limit - 1, withscores=True)
            replies = pipe.execute()
            total = sum(replies[0::2])
            located = [
                (batch_id, score, part)
                for part, page in zip(self.keys.all_partitions(), replies[1::2], strict=False)
                for batch_id, score in page
            ]
            located.sort(key=lambda entry: entry[1], reverse=True)
            page = located[offset : offset + limit]
            pipe = self.client.pipeline(transaction=False)
            for batch_id, _, part in page:
                pipe.hmget(part.dead_data, batch_id, f"i:{batch_id}")
            records = pipe.execute()
        letters = [
            DeadLetter(bid, body, json.loads(info))
            for (bid, _, _), (body, info) in zip(page, records, strict=False)
            if body
        ]
        return total, letters

    def dead_letter(self, batch_id: str) -> DeadLetter | None:
        """One dead letter by batch id, or None."""
        if not is_batch_id(batch_id):  # e.g. "i:<id>", the name of a letter's info field
            return None
        with _redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.hmget(part.dead_data, batch_id, f"i:{batch_id}")
            for body, info in pipe.execute():
                if body:
                    return DeadLetter(batch_id, body, json.loads(info))
        return None

    def replay_dead(self, batch_id: str) -> bool:
        """Queue a dead letter for delivery again, under the same batch_id."""
        letter = self.dead_letter(batch_id)
        if letter is None:
            return False
        user = letter.info["user"]
        k = self.keys.user(user)
        part = self.keys.indexes_of(user)
        keys = [part.ready, k.outbox, k.batches, part.dead, part.dead_data]
        with _redis_errors():
            return bool(self._scripts["replay"](keys=keys, args=[user, batch_id]))

    def delete_dead(self, batch_id: str) -> bool:
        """Forget a dead letter for good."""
        if not is_batch_id(batch_id):
            return False
        with _redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for part in self.keys.all_partitions():
                pipe.zrem(part.dead, batch_id)
                pipe.hdel(part.dead_data, batch_id, f"i:{batch_id}")
            return any(pipe.execute()[0::2])

    # ---- expiry events ----

    def expiry_subscription(self) -> ExpirySubscription:
        """A subscription to this database's expired events, yielding the users whose timer expired."""
        return ExpirySubscription(self)

    # ---- helpers ----

    def _due(self, user: str) -> str:
        return self.keys.indexes_of(user).due

    def _ready(self, user: str) -> str:
        return self.keys.indexes_of(user).ready

    def _outbox_keys(self, user: str) -> list[str]:
        k = self.keys.user(user)
        return [self._ready(user), k.outbox, k.batches]

    def _user_keys(self, user: str) -> list[str]:
        k: UserKeys = self.keys.user(user)
        part = self.keys.indexes_of(user)
        return [k.buffer, k.meta, k.timer, k.sequence, k.outbox, k.batches, part.due, part.ready]

    def _flush_args(self, user: str, reason: str) -> list[str | int]:
        return [user, compact_json(user), reason, new_batch_id(), SEQUENCE_TTL_SECONDS]


class ExpirySubscription:
    """Expired-key events of our timers; every method raises StoreUnavailableError when the link drops."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.channel = f"__keyevent@{store.settings.redis_db}__:expired"
        self.pubsub = store.client.pubsub(ignore_subscribe_messages=True)
        with _redis_errors():
            self.pubsub.subscribe(self.channel)

    def next_user(self, timeout: float) -> str | None:
        """The user of the next expired timer within `timeout` seconds, else None."""
        try:
            with _redis_errors():
                message = self.pubsub.get_message(timeout=timeout)
        except UnicodeDecodeError:  # another app's key name that is not UTF-8: not one of our timers
            return None
        if not message or message.get("type") != "message":
            return None
        return self.store.keys.user_of_timer(message["data"])

    def close(self) -> None:
        """Unsubscribe and release the connection; never raises."""
        with suppress(redis.RedisError):
            self.pubsub.close()


def _read_script(name: str) -> str:
    return resources.files("datafy").joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")


def _decode_entry(entry: str) -> tuple[int, dict[str, Any]]:
    received_ms, item = json.loads(entry)
    return int(received_ms), item
