"""End to end under load: a steady message rate over many users, every message checked at the receiver.

Default: 60 s at 1,000 messages/s over 20,000 users, ttl uniform in 1-5 s, through the real API
(production gunicorn config), one monitor container (one process per CPU) and a fast receiver. Reports
the oracle (every acknowledged message delivered exactly once per distinct batch), the lag of each batch
behind its deadline, and the CPU each process used.

    ./dev bench steady [--seconds 60] [--rate 1000] [--users 20000] [--monitors 1] [--observe]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.client import open_pool, post  # noqa: E402
from bench.common import (  # noqa: E402
    cpu_seconds,
    fast_receiver,
    gunicorn_pids,
    percentiles,
    running_redis,
    start_gunicorn,
    tree_cpu_seconds,
)
from bench.observe import ADMIN_KEY, observe_later  # noqa: E402
from devtools.processes import start_monitor  # noqa: E402
from devtools.redis_server import free_port  # noqa: E402


async def load(url: str, seconds: float, rate: float, users: int) -> list[dict]:
    """Send at a fixed rate from a pool of keep-alive connections; one record per message."""
    host, pool = await open_pool(url)
    records: list[dict] = []
    counters: dict[str, int] = defaultdict(int)

    async def one(user: str, text: str, ttl: float) -> None:
        conn = await pool.get()
        try:
            body = json.dumps({"user": user, "message": text, "ttl": ttl, "pushName": "Ana"}).encode()
            status, reply = await post(conn, host, body)
            records.append({"user": user, "text": text, "status": status, "flush_at": reply.get("flush_at")})
        finally:
            pool.put_nowait(conn)

    tasks, started = [], time.monotonic()
    for i in range(int(seconds * rate)):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        user = f"55119{random.randrange(users):08d}"
        counters[user] += 1
        tasks.append(asyncio.create_task(one(user, f"{user}-{counters[user]}", round(random.uniform(1, 5), 2))))
    await asyncio.gather(*tasks)
    print(f"  sent {len(tasks)} in {time.monotonic() - started:.1f}s", flush=True)
    return records


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--monitors", type=int, default=1, help="monitor containers")
    parser.add_argument("--observe", action="store_true", help="part-way through, print /api/status and the "
                        "metrics and screenshot the dashboard")  # fmt: skip
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
    with running_redis() as server, fast_receiver(tmp) as (hook, received):
        env = {"REDIS_URL": server.url, "WEBHOOK_URL": hook, "ADMIN_API_KEY": ADMIN_KEY}
        metrics_port = free_port()
        with start_gunicorn("api:app", env, tmp) as url:
            monitors = [start_monitor({**env, "METRICS_PORT": str(metrics_port if i == 0 else 0)}, tmp,
                                      name=f"monitor-{i}") for i in range(args.monitors)]  # fmt: skip
            if args.observe:
                observe_later(url, f"http://127.0.0.1:{metrics_port}/metrics", after=args.seconds * 0.6)
            pids = {"redis": [server.process.pid], "api (gunicorn)": gunicorn_pids(url),
                    "monitors": [m.process.pid for m in monitors]}  # fmt: skip
            before = {name: sum(_cpu(name, p) for p in group) for name, group in pids.items()}
            load_cpu = time.process_time()
            records = asyncio.run(load(url, args.seconds, args.rate, args.users))
            load_cpu = time.process_time() - load_cpu
            acked = [r for r in records if r["status"] == 200]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and _pending(server.url):
                time.sleep(0.5)
            time.sleep(1)
            cpu = {name: sum(_cpu(name, p) for p in group) - before[name] for name, group in pids.items()}
            for monitor in monitors:
                monitor.stop()
    report(records, acked, received, cpu, load_cpu, args.seconds)
    return 0


def report(records: list[dict], acked: list[dict], received: list[dict], cpu: dict, load_cpu: float, seconds: float):
    batches: dict[str, dict] = {}
    first_arrival: dict[str, float] = {}
    for entry in received:
        batch = entry["batch"]
        batches.setdefault(batch["batch_id"], batch)
        first_arrival.setdefault(batch["batch_id"], entry["at"])
    seen: dict[str, int] = defaultdict(int)
    for batch in batches.values():
        for text in batch["messages"]:
            seen[text] += 1
    once = sum(1 for r in acked if seen.get(r["text"]) == 1)
    missing = sum(1 for r in acked if r["text"] not in seen)
    twice = sum(1 for r in acked if seen.get(r["text"], 0) > 1)
    # A batch's deadline is the flush_at the API gave its last message.
    flush_at = {r["text"]: r["flush_at"] for r in acked}
    lags = []
    for batch_id, batch in batches.items():
        due = _epoch(flush_at[batch["messages"][-1]])
        lags.append(first_arrival[batch_id] - due)
    stats = percentiles(lags)
    print(f"  messages: sent {len(records)}, acknowledged {len(acked)}, non-2xx {len(records) - len(acked)}")
    print(f"  oracle: delivered exactly once {once}, missing {missing}, in two batches {twice}; "
          f"{len(batches)} batches, {len(received) - len(batches)} redeliveries")  # fmt: skip
    print(f"  lag behind deadline: p50 {stats['p50']:.0f} ms, p99 {stats['p99']:.0f} ms, max {stats['max']:.0f} ms")
    print("  CPU (cores, averaged over the load): " + ", ".join(
        f"{name} {used / seconds:.2f}" for name, used in {**cpu, "load generator": load_cpu}.items()))  # fmt: skip


def _cpu(group: str, pid: int) -> float:
    """A monitor container's processes are children of the one started; gunicorn's workers are found by name."""
    return tree_cpu_seconds(pid) if group == "monitors" else cpu_seconds(pid)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _pending(redis_url: str) -> bool:
    import redis

    client = redis.Redis.from_url(redis_url)
    return any(client.scan_iter("datafy:*:due", count=1000)) or any(client.scan_iter("datafy:*:ready", count=1000))


if __name__ == "__main__":
    sys.exit(main())
