"""Answering while the AI thinks: what the answer guard costs beside POST /api/message, what await_answer adds to a
message and to a delivery, and the Redis memory ANSWER_WINDOW keeps per delivered batch.

    ./dev bench answering [--chats 2000] [--samples 3000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import percentiles, running_redis, start_gunicorn  # noqa: E402
from datafy.config import Settings  # noqa: E402
from datafy.model import IncomingMessage  # noqa: E402
from datafy.store import Store  # noqa: E402

MESSAGE = "Oi! Queria saber o preço do produto e se vocês entregam hoje."  # 61 bytes, as bench/memory.py


def deliver_all(store: Store) -> list[tuple[str, str]]:
    """Lease and acknowledge every ready batch, as the monitor does; returns (user, batch_id) of each."""
    done = []
    while claims := store.outbox.claim(500, 60):
        for claim in claims:
            store.outbox.ack(claim)
            done.append((claim.user, claim.batch_id))
    return done


def seal_chats(store: Store, chats: int, await_ms: int = 0) -> None:
    """`chats` one-burst chats of 5 messages, sealed at once (flush on the last)."""
    for i in range(chats):
        for n in range(5):
            store.buffer.append(IncomingMessage(user=f"55119{i:08d}", message=MESSAGE, ttl_ms=60_000,
                                                metadata={"pushName": "Ana"}, await_ms=await_ms,
                                                flush_reason="request" if n == 4 else ""))  # fmt: skip


def memory_per_batch(url: str, chats: int) -> float:
    """Bytes of Redis per delivered batch kept for ANSWER_WINDOW (against a window of 0)."""
    client = redis.Redis.from_url(url)
    used = {}
    for window in (0.0, 600.0):
        client.flushall()
        store = Store(Settings.from_env({"REDIS_URL": url, "ANSWER_WINDOW": str(window)}))
        seal_chats(store, chats)
        before = client.info("memory")["used_memory"]
        deliver_all(store)
        used[window] = client.info("memory")["used_memory"] - before
    return (used[600.0] - used[0.0]) / chats


def interleaved_latency(api: str, store: Store, samples: int) -> tuple[list[float], list[float]]:
    """POST /api/message and the guard, one after the other, measured at the client (seconds)."""
    batches = deliver_all(store)
    session, posts, guards = requests.Session(), [], []
    for _ in range(samples):
        user, batch_id = random.choice(batches)
        started = time.perf_counter()
        assert session.post(f"{api}/api/message", json={"user": user, "message": MESSAGE, "ttl": 3600}).ok
        posts.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert session.get(f"{api}/api/chats/{user}/batches/{batch_id}").ok
        guards.append(time.perf_counter() - started)
    return posts, guards


def script_cost(client: redis.Redis, store: Store, chats: int, await_ms: int) -> tuple[float, float]:
    """Redis CPU (µs) per message appended and per batch delivered, with or without await_answer."""
    client.flushall()
    client.config_resetstat()
    seal_chats(store, chats, await_ms)
    stats = client.info("commandstats")
    per_message = sum(v["usec"] for k, v in stats.items() if k.startswith("cmdstat_evalsha")) / (chats * 5)
    client.config_resetstat()
    deliver_all(store)
    stats = client.info("commandstats")
    per_delivery = sum(v["usec"] for k, v in stats.items() if k.startswith("cmdstat_evalsha")) / chats
    return per_message, per_delivery


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=3000)
    args = parser.parse_args()
    with running_redis() as server, tempfile.TemporaryDirectory() as tmp:
        client = redis.Redis.from_url(server.url)
        per_batch = memory_per_batch(server.url, args.chats)
        print(f"ANSWER_WINDOW memory: {per_batch:.0f} bytes per delivered batch (5 messages of 61 bytes)")
        store = Store(Settings.from_env({"REDIS_URL": server.url}))
        for await_ms, label in ((0, "without await_answer"), (120_000, "with await_answer")):
            message, delivery = script_cost(client, store, args.chats, await_ms)
            print(f"Redis CPU {label}: {message:.1f} µs per message, {delivery:.1f} µs per delivery (ack + claim)")
        client.flushall()
        seal_chats(store, args.chats)
        with start_gunicorn("api:app", {"REDIS_URL": server.url}, Path(tmp)) as api:
            posts, guards = interleaved_latency(api, store, args.samples)
        for name, took in (("POST /api/message", posts), ("GET guard", guards)):
            p = percentiles(took)
            print(f"{name:>18}: p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms (n={len(took)}, one client)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
