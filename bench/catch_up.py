"""The catch-up's Redis cost through a large outage: N batches wait for a retry behind an open breaker.

While the receiver is down, each probe grant (every 2 s) makes the oldest waiting batch of each partition
ready; when it answers again, one pass makes every waiting batch ready. Each is a Lua script per
partition, so its time is time Redis serves nobody else.

    ./dev bench catch_up [--waiting 200000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import running_redis  # noqa: E402
from datafy.config import Settings  # noqa: E402
from datafy.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, default=200_000, help="batches waiting for a retry")
    args = parser.parse_args()
    with running_redis() as server:
        store = Store(Settings.from_env({"REDIS_URL": server.url, "WEBHOOK_URL": "http://127.0.0.1:9/none",
                                         "INGEST_AUTH": "off"}))  # fmt: skip
        client = redis.Redis.from_url(server.url)
        parts, now = store.keys.all_partitions(), int(time.time() * 1000)
        pipe = client.pipeline(transaction=False)
        for i in range(args.waiting):  # the index entries a failed attempt leaves: waiting since, due in an hour
            part = parts[i % len(parts)]
            pipe.zadd(part.retrying, {f"u{i}": now - i})
            pipe.zadd(part.ready, {f"u{i}": now + 3_600_000})
            if i % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
        print(f"{args.waiting:,} batches waiting for a retry over {len(parts)} partitions")
        for label, per_partition in [("probe grant (oldest per partition)", 1), ("next probe grant", 1),
                                     ("receiver answers: every batch", 0), ("a second full pass", 0)]:  # fmt: skip
            started = time.perf_counter()
            moved = store.breaker.catch_up(per_partition)
            took = (time.perf_counter() - started) * 1000
            print(f"{label:38} {moved:>8,} made ready  {took:8.1f} ms")
        longest = max(entry["duration"] for entry in client.slowlog_get(128)) / 1000 if client.slowlog_len() else 0
        print(f"longest single script (SLOWLOG): {longest:.1f} ms")


if __name__ == "__main__":
    main()
