"""What idle monitors cost Redis: commands/s and Redis CPU while nothing happens, by monitor count and
partition count. Each monitor here is a container of its own with one process (MONITOR_PROCESSES=1).

The partitions are shared among the live monitors (datafy/monitor/partitions.py): each partition is
polled on time by one monitor and backed up by one other, so the cost should stay flat as monitors grow.

    ./dev bench polling [--monitors 1,2,4,8] [--partitions 16,64] [--seconds 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import redis  # noqa: E402

from bench.common import cpu_seconds, running_redis  # noqa: E402
from devtools.processes import running, start_monitor  # noqa: E402


def idle_cost(url: str, pid: int, monitors: int, partitions: int, seconds: float, tmp: Path) -> tuple[float, float]:
    """(commands/s, Redis CPU ms/s) with `monitors` idle monitors polling `partitions` partitions."""
    client = redis.Redis.from_url(url)
    client.flushall()
    env = {"REDIS_URL": url, "WEBHOOK_URL": "http://127.0.0.1:9/unused", "MONITOR_PROCESSES": "1",
           "REDIS_PARTITIONS": str(partitions), "LOG_LEVEL": "WARNING"}  # fmt: skip
    procs = [start_monitor({**env, "LOG_LEVEL": "INFO"}, tmp, name=f"m{partitions}-{monitors}-{i}")
             for i in range(monitors)]  # fmt: skip
    with running(*procs):
        time.sleep(3)  # every monitor has beaten and taken its share
        commands, cpu = client.info("stats")["total_commands_processed"], cpu_seconds(pid)
        time.sleep(seconds)
        commands = client.info("stats")["total_commands_processed"] - commands
        cpu = cpu_seconds(pid) - cpu
    return commands / seconds, cpu * 1000 / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", default="1,2,4,8")
    parser.add_argument("--partitions", default="16,64")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with running_redis() as server, tempfile.TemporaryDirectory() as tmp:
        assert server.process is not None
        print("| partitions | monitors | commands/s | Redis CPU ms/s |")
        print("| --- | --- | --- | --- |")
        for partitions in (int(p) for p in args.partitions.split(",")):
            for monitors in (int(m) for m in args.monitors.split(",")):
                rate, cpu = idle_cost(server.url, server.process.pid, monitors, partitions, args.seconds, Path(tmp))
                print(f"| {partitions} | {monitors} | {rate:,.0f} | {cpu:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
