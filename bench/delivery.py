"""Delivery throughput: sealed batches POSTed per second to a fast local receiver, by 1 and by 2 monitors.

./dev bench delivery [--batches 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import cpu_seconds, fast_receiver, running_redis  # noqa: E402
from datafy.config import Settings  # noqa: E402
from datafy.dev.processes import start_monitor  # noqa: E402
from datafy.model import IncomingMessage  # noqa: E402
from datafy.store import Store  # noqa: E402


def seal_batches(store: Store, count: int) -> None:
    """`count` users with one sealed batch of 3 messages each, ready for delivery."""

    def one(i: int) -> None:
        user = f"5511{i:09d}"
        for text in ("oi", "tudo bem?"):
            store.append(IncomingMessage(user=user, message=text, ttl_ms=3_600_000, metadata={"pushName": "Ana"}))
        store.append(IncomingMessage(user=user, message="queria saber o preço", ttl_ms=1, flush_reason="request"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def measure(monitors: int, batches: int, concurrency: int) -> None:
    with running_redis() as server:
        store = Store(Settings.from_env({"REDIS_URL": server.url}))
        seal_batches(store, batches)
        tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
        with fast_receiver(tmp) as (url, records), ExitStack() as stack:
            env = {"REDIS_URL": server.url, "WEBHOOK_URL": url, "WEBHOOK_CONCURRENCY": str(concurrency)}
            procs = [start_monitor(env, tmp, name=f"monitor-{i}") for i in range(monitors)]
            for proc in procs:
                stack.callback(proc.stop)
            cpu_before = [cpu_seconds(proc.process.pid) for proc in procs]
            while sum(store.client.zcard(p.ready) for p in store.keys.all_partitions()) > 0:
                time.sleep(0.1)
            cpu = [cpu_seconds(proc.process.pid) - before for proc, before in zip(procs, cpu_before, strict=True)]
        times = sorted(r["at"] for r in records)
        unique = len({r["batch"]["batch_id"] for r in records})
        span = times[-1] - times[0]
        print(
            f"  {monitors} monitor(s): {unique} batches in {span:.2f}s = {unique / span:.0f} batches/s "
            f"({len(records) - unique} duplicates); monitor CPU {sum(cpu):.1f}s",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32, help="WEBHOOK_CONCURRENCY of each monitor")
    args = parser.parse_args()
    for monitors in (1, 2):
        measure(monitors, args.batches, args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
