"""Burst lag: N users each send one message as fast as the API takes them (ttl 3 s), with one monitor
container running. Every batch must arrive; reports arrival - deadline and sealed - deadline.

    ./dev bench burst [--users 2000,20000] [--ttl 3] [--rate 2000] [--containers] [--env API_NICE=0 ...]

--rate sends at most that many messages a second: the deadlines are as dense as the API is fast, so comparing
two versions of the monitor needs the same rate for both.

--containers puts Redis, the API and the monitor each in a CPU cgroup of its own with equal shares, as Docker
puts three containers (cgroup v1 `cpu` controller, as root); without it they compete thread by thread.
--api-shares and --api-cpus then give the API's cgroup compose's `cpu_shares` (1024 = the default) and `cpus`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Containers:
    """One CPU cgroup per container, and the API's own `cpu_shares` and `cpus` (0: no limit)."""

    api_shares: int = 1024
    api_cpus: float = 0.0


def burst(
    users: int, ttl: float, containers: Containers | None = None, extra: dict[str, str] | None = None, rate: float = 0
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
    with running_redis() as server, fast_receiver(tmp) as (hook, received):
        env = {"REDIS_URL": server.url, "WEBHOOK_URL": hook, **(extra or {})}
        client = redis.Redis.from_url(server.url)
        with start_gunicorn("api:app", env, tmp) as url:
            monitor = start_monitor(env, tmp)
            groups = {
                "redis": [server.process.pid],
                "api (gunicorn)": gunicorn_pids(url),
                "monitor": [monitor.process.pid],
            }
            if containers:
                for name, pids in groups.items():
                    api = name.startswith("api")
                    _contain(
                        name, _tree(pids), containers.api_shares if api else 1024, containers.api_cpus if api else 0
                    )
            before = {name: sum(cpu_seconds(pid) for pid in _tree(pids)) for name, pids in groups.items()}
            load_cpu = time.process_time()
            bodies = [{"user": f"55119{i:08d}", "message": "oi, tudo bem?", "pushName": "Ana", "ttl": ttl}
                      for i in range(users)]  # fmt: skip
            started, started_epoch = time.perf_counter(), time.time()
            rate, replies = asyncio.run(send_all(url, bodies, rate=rate))
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
    # What each customer lives through: the wait for the API to take the message, the ttl, the delivery.
    answer = percentiles([arrivals[user] - started_epoch - ttl for user in flush_at if user in arrivals])
    print(f"    answer - (burst start + ttl): p50 {answer['p50']:.0f} ms, p99 {answer['p99']:.0f} ms, "
          f"max {answer['max']:.0f} ms", flush=True)  # fmt: skip
    for label, times in (("arrival", arrivals), ("sealed", sealed)):
        stats = percentiles([times[user] - due for user, due in flush_at.items() if user in times])
        print(f"    {label} - deadline: p50 {stats['p50']:.0f} ms, p99 {stats['p99']:.0f} ms, "
              f"max {stats['max']:.0f} ms, missing {len(flush_at) - len(times)}", flush=True)  # fmt: skip


def _tree(pids: list[int]) -> set[int]:
    """The processes and their live children, each once (gunicorn's master and workers are all listed)."""
    return {*pids, *(child for pid in pids for child in child_pids(pid))}


CGROUPS = Path("/sys/fs/cgroup/cpu")


def _contain(name: str, pids: set[int], shares: int, cpus: float) -> None:
    """Move `pids` (and their threads) into a CPU cgroup of their own, as Docker does for a container."""
    group = CGROUPS / f"datafy-bench-{name.split()[0]}"
    group.mkdir(exist_ok=True)
    (group / "cpu.shares").write_text(str(shares))
    (group / "cpu.cfs_period_us").write_text("100000")
    (group / "cpu.cfs_quota_us").write_text(str(int(cpus * 100000)) if cpus else "-1")
    for pid in pids:
        (group / "cgroup.procs").write_text(str(pid))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default="2000,20000")
    parser.add_argument("--ttl", type=float, default=3)
    parser.add_argument("--containers", action="store_true", help="one CPU cgroup per container, as Docker")
    parser.add_argument("--api-shares", type=int, default=1024, help="with --containers: the API's cpu_shares")
    parser.add_argument("--api-cpus", type=float, default=0.0, help="with --containers: the API's cpus limit")
    parser.add_argument("--env", action="append", default=[], help="NAME=value for the API and the monitor")
    parser.add_argument("--rate", type=float, default=0, help="messages/s at most (0: as fast as the API takes them)")
    args = parser.parse_args()
    extra = dict(pair.split("=", 1) for pair in args.env)
    containers = Containers(args.api_shares, args.api_cpus) if args.containers else None
    for users in args.users.split(","):
        burst(int(users), args.ttl, containers, extra, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
