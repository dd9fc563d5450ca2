"""Burst lag: N users each send one message as fast as the API takes them (ttl 3 s), with one monitor
container running. Every batch must arrive; reports arrival - deadline and sealed - deadline.

    ./dev bench burst [--users 2000,20000] [--ttl 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import redis  # noqa: E402

from bench.client import send_all  # noqa: E402
from bench.common import (  # noqa: E402
    cpu_seconds,
    fast_receiver,
    gunicorn_pids,
    percentiles,
    running_redis,
    start_gunicorn,
)
from datafy.model import epoch_of  # noqa: E402
from devtools.processes import child_pids, start_monitor  # noqa: E402


def burst(users: int, ttl: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
    with running_redis() as server, fast_receiver(tmp) as (hook, received):
        env = {"REDIS_URL": server.url, "WEBHOOK_URL": hook}
        client = redis.Redis.from_url(server.url)
        with start_gunicorn("api:app", env, tmp) as url:
            monitor = start_monitor(env, tmp)
            groups = {
                "redis": [server.process.pid],
                "api (gunicorn)": gunicorn_pids(url),
                "monitor": [monitor.process.pid],
            }
            before = {name: sum(cpu_seconds(pid) for pid in _tree(pids)) for name, pids in groups.items()}
            load_cpu = time.process_time()
            bodies = [{"user": f"55119{i:08d}", "message": "oi, tudo bem?", "pushName": "Ana", "ttl": ttl}
                      for i in range(users)]  # fmt: skip
            started = time.perf_counter()
            rate, replies = asyncio.run(send_all(url, bodies))
            sent_in = time.perf_counter() - started
            load_cpu = time.process_time() - load_cpu
            deadline = time.monotonic() + ttl + 120
            while time.monotonic() < deadline and (
                any(client.scan_iter("datafy:*:due", count=1000)) or any(client.scan_iter("datafy:*:ready", count=1000))
            ):
                time.sleep(0.1)
            drained_in = time.perf_counter() - started
            cpu = {name: sum(cpu_seconds(pid) for pid in _tree(pids)) - before[name] for name, pids in groups.items()}
            monitor.stop()
    cpu["load generator"] = load_cpu
    flush_at = {body["user"]: epoch_of(reply["flush_at"]) for body, (status, reply) in zip(bodies, replies, strict=True)
                if status == 200}  # fmt: skip
    arrivals: dict[str, float] = {}
    sealed: dict[str, float] = {}
    for record in received:
        user = record["batch"]["user"]
        arrivals.setdefault(user, record["at"])
        sealed.setdefault(user, epoch_of(record["batch"]["processed_at"]))
    print(f"  {users} users sent in {sent_in:.1f}s ({rate:,.0f} msg/s), {len(flush_at)} acknowledged, "
          f"{len(arrivals)} batches arrived, {len(received) - len(arrivals)} duplicates", flush=True)  # fmt: skip
    print(f"    CPU seconds from the first message until all were delivered ({drained_in:.1f}s): "
          + ", ".join(f"{name} {used:.1f}" for name, used in cpu.items()), flush=True)  # fmt: skip
    for label, times in (("arrival", arrivals), ("sealed", sealed)):
        stats = percentiles([times[user] - due for user, due in flush_at.items() if user in times])
        print(f"    {label} - deadline: p50 {stats['p50']:.0f} ms, p99 {stats['p99']:.0f} ms, "
              f"max {stats['max']:.0f} ms, missing {len(flush_at) - len(times)}", flush=True)  # fmt: skip


def _tree(pids: list[int]) -> set[int]:
    """The processes and their live children, each once (gunicorn's master and workers are all listed)."""
    return {*pids, *(child for pid in pids for child in child_pids(pid))}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default="2000,20000")
    parser.add_argument("--ttl", type=float, default=3)
    args = parser.parse_args()
    for users in args.users.split(","):
        burst(int(users), args.ttl)
    return 0


if __name__ == "__main__":
    sys.exit(main())
