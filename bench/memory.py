"""Memory and cost growth: Redis memory per pending chat, and API time per message, at 1k, 10k and 100k chats.

Each pending chat holds 10 messages of about 60 bytes (plus a pushName), as a WhatsApp burst would.

    ./dev bench memory [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import percentiles, running_redis, start_gunicorn  # noqa: E402
from datafy.config import Settings  # noqa: E402
from datafy.model import IncomingMessage  # noqa: E402
from datafy.store import Store  # noqa: E402

MESSAGE = "Oi! Queria saber o preço do produto e se vocês entregam hoje."  # 61 bytes


def fill(store: Store, first: int, count: int) -> None:
    """`count` more pending chats of 10 messages each."""

    def chat(i: int) -> None:
        for _ in range(10):
            store.buffer.append(IncomingMessage(user=f"55119{i:08d}", message=MESSAGE, ttl_ms=3_600_000,
                                         metadata={"pushName": "Ana"}))  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(chat, range(first, first + count)))


def api_latency(url: str, chats: int, samples: int = 2000) -> dict[str, float]:
    """Sequential POSTs to existing chats (the 11th message of random chats), measured at the client."""
    session, took = requests.Session(), []
    for _ in range(samples):
        body = {"user": f"55119{random.randrange(chats):08d}", "message": MESSAGE, "ttl": 3600, "pushName": "Ana"}
        started = time.perf_counter()
        assert session.post(f"{url}/api/message", json=body, timeout=5).status_code == 200
        took.append(time.perf_counter() - started)
    return percentiles(took) | {"mean": sum(took) / len(took) * 1000}


def _wait_for_background_saves(client: redis.Redis) -> None:
    while True:
        info = client.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("rdb_bgsave_in_progress"):
            return
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with running_redis() as server:
        client = redis.Redis.from_url(server.url)
        store = Store(Settings.from_env({"REDIS_URL": server.url}))
        tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
        baseline = int(client.info("memory")["used_memory"])
        print(f"{'chats':>7} | {'bytes/chat':>10} | {'API mean ms':>11} | {'p50 ms':>6} | {'p99 ms':>6}")
        done = 0
        with start_gunicorn("api:app", {"REDIS_URL": server.url}, tmp) as url:
            for size in sizes:
                fill(store, done, size - done)
                done = size
                used = int(client.info("memory")["used_memory"]) - baseline
                _wait_for_background_saves(client)  # an AOF rewrite (fork) would slow the latency sample
                latency = api_latency(url, size)
                client.execute_command("MEMORY", "PURGE")
                print(f"{size:>7} | {used / size:>10.0f} | {latency['mean']:>11.2f} | {latency['p50']:>6.2f} | "
                      f"{latency['p99']:>6.2f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
