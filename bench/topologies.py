"""The same load on three Redis set-ups, in one run: one server, one server whose appends wait for a replica
(REDIS_WAIT_REPLICAS=1), and a 3-primary Cluster. N one-message batches go in through the API (sealed at
once with flush: true), then one monitor container drains them to the fast receiver. Reports the rates and
the CPU each Redis process used per message: on 2 cores a Cluster cannot be faster (every process shares
them), but its cost per primary shows how it spreads on real machines.

    ./dev bench topologies [--batches 20000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import redis  # noqa: E402
from redis.cluster import RedisCluster  # noqa: E402

from bench.client import send_all  # noqa: E402
from bench.common import cpu_seconds, fast_receiver, machine_facts, start_gunicorn  # noqa: E402
from devtools.cluster import LocalCluster  # noqa: E402
from devtools.processes import start  # noqa: E402
from devtools.redis_server import RedisServer, wait_until  # noqa: E402

Setup = tuple[str, dict[str, str], list[int], redis.Redis | RedisCluster]  # (url, extra env, data pids, client)


@contextmanager
def single() -> Iterator[Setup]:
    server = RedisServer().start()
    try:
        assert server.process is not None
        yield server.url, {}, [server.process.pid], redis.Redis.from_url(server.url)
    finally:
        server.cleanup()


@contextmanager
def with_replica() -> Iterator[Setup]:
    primary = RedisServer(extra_args=("--repl-diskless-sync-delay", "0")).start()
    replica = RedisServer(extra_args=("--replicaof", "127.0.0.1", str(primary.port))).start()
    try:
        client, follower = redis.Redis.from_url(primary.url), redis.Redis.from_url(replica.url, decode_responses=True)
        wait_until(lambda: follower.info("replication")["master_link_status"] == "up", 20, "the replica to sync")
        pids = [p.process.pid for p in (primary, replica) if p.process is not None]
        yield primary.url, {"REDIS_WAIT_REPLICAS": "1"}, pids, client
    finally:
        replica.cleanup()
        primary.cleanup()


@contextmanager
def cluster() -> Iterator[Setup]:
    with LocalCluster(primaries=3) as local:
        pids = [node.process.pid for node in local.primaries() if node.process is not None]
        yield local.url, {}, pids, RedisCluster.from_url(local.url)


SETUPS = {"single": single, "single, WAIT 1 replica": with_replica, "cluster, 3 primaries": cluster}


def one_round(setup_name: str, batches: int, tmp: Path) -> dict[str, object]:
    with SETUPS[setup_name]() as (url, extra, pids, client), fast_receiver(tmp) as (hook, _received):
        env = {"REDIS_URL": url, "WEBHOOK_URL": hook, **extra}
        bodies = [{"user": f"55119{i:08d}", "message": "oi", "pushName": "Ana", "flush": True} for i in range(batches)]
        with start_gunicorn("api:app", env, tmp) as api:
            before = [cpu_seconds(pid) for pid in pids]
            ingest, replies = asyncio.run(send_all(api, bodies))
            ingest_cpu = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
        refused = sum(1 for status, _ in replies if status != 200)
        if refused:
            print(f"  {setup_name}: {refused} of {batches} not acknowledged (503): not counted", flush=True)
        before = [cpu_seconds(pid) for pid in pids]
        started = time.perf_counter()
        monitor = start(f"monitor-{time.monotonic_ns()}", [sys.executable, "monitor.py"], env, tmp)
        while any(client.scan_iter("datafy:*:outbox:*", count=1000)):
            time.sleep(0.05)
        drain = (batches - refused) / (time.perf_counter() - started)
        drain_cpu = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
        monitor.stop()
    return {"ingest": ingest, "drain": drain, "ingest_cpu": ingest_cpu, "drain_cpu": drain_cpu}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(machine_facts(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
    print("| set-up | round | ingest msg/s | Redis CPU µs/msg in (per process) | drain batches/s "
          "| Redis CPU µs/batch out (per process) |\n| --- | --- | --- | --- | --- | --- |")  # fmt: skip
    for round_ in range(args.rounds):  # interleaved: the VM's speed drifts between runs
        for name in SETUPS:
            r = one_round(name, args.batches, tmp)
            per_in = " + ".join(f"{cpu / args.batches * 1e6:.0f}" for cpu in r["ingest_cpu"])  # type: ignore[attr-defined]
            per_out = " + ".join(f"{cpu / args.batches * 1e6:.0f}" for cpu in r["drain_cpu"])  # type: ignore[attr-defined]
            print(f"| {name} | {round_ + 1} | {r['ingest']:,.0f} | {per_in} | {r['drain']:,.0f} | {per_out} |",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
