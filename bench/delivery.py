"""Drain rate: N batches sealed while no monitor runs, then ONE monitor container (default settings)
delivers them to the fast receiver. Compared with the API's ingest rate, measured in the same run with
the same client (bench/client.py), and with the monitor's CPU per delivered batch.

    ./dev bench delivery [--batches 10000,50000] [--rounds 2]
    ./dev bench delivery --routes 1,100 --batches 20000   # routes to as many receiver paths, sealed in Redis
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
    fast_receiver,
    machine_facts,
    start_gunicorn,
    tree_cpu_seconds,
)
from datafy.config import Settings  # noqa: E402
from datafy.model import IncomingMessage  # noqa: E402
from datafy.routes.chats import DEFAULT_ROUTE  # noqa: E402
from datafy.routes.route import parse_route  # noqa: E402
from datafy.store import Store  # noqa: E402
from devtools.processes import start  # noqa: E402
from devtools.redis_server import RedisServer  # noqa: E402


def one_round(batches: int, tmp: Path, monitor_env: dict[str, str], routes: int = 0) -> dict[str, float]:
    """Ingest `batches` one-message batches (sealed at once with flush: true), then drain them with one monitor.
    With `routes`, the batches are sealed straight into Redis, spread over that many routes, each with its own
    receiver path (1: the default route alone)."""
    server = RedisServer().start()
    try:
        client = redis.Redis.from_url(server.url)
        with fast_receiver(tmp) as (hook, received):
            env = {"REDIS_URL": server.url, "WEBHOOK_URL": hook}
            if routes:
                ingest = seal_over_routes(env, batches, routes)
            else:
                bodies = [
                    {"user": f"55119{i:08d}", "message": "queria saber o preço", "pushName": "Ana", "flush": True}
                    for i in range(batches)
                ]
                with start_gunicorn("api:app", env, tmp) as url:
                    ingest, replies = asyncio.run(send_all(url, bodies))
                refused = sum(1 for status, _ in replies if status != 200)
                assert not refused, f"{refused} not acknowledged"
            started = time.perf_counter()
            # Not start_monitor: it waits for an INFO line, and LOG_LEVEL=WARNING is one of the settings measured.
            name = f"monitor-{batches}-{time.monotonic_ns()}"
            monitor = start(name, [sys.executable, "monitor.py"], {**env, **monitor_env}, tmp)
            cpu_before = tree_cpu_seconds(monitor.process.pid)
            while any(client.scan_iter("datafy:*:ready", count=1000)):
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            cpu = tree_cpu_seconds(monitor.process.pid) - cpu_before
            processes = len(monitor.children()) or 1
            monitor.stop()
        arrivals = sorted(r["at"] for r in received)
        unique = len({r["batch"]["batch_id"] for r in received})
    finally:
        server.cleanup()
    assert unique == batches, f"{batches - unique} batches missing"
    return {
        "ingest": ingest,
        "drain": unique / (arrivals[-1] - arrivals[0]),
        "wall": unique / elapsed,
        "duplicates": len(received) - unique,
        "cpu_us": cpu / unique * 1e6,
        "processes": processes,
    }


def seal_over_routes(env: dict[str, str], batches: int, routes: int) -> float:
    """`batches` sealed one-message batches spread over `routes` routes (each on its own receiver path); returns
    the sealing rate (messages/s, straight into Redis: not comparable with the API's ingest)."""
    settings = Settings.from_env(env)
    store = Store(settings)
    names = [DEFAULT_ROUTE] if routes == 1 else [f"client-{n}" for n in range(routes)]
    for name in names if routes > 1 else []:
        doc = {"name": name, "webhook_url": f"{env['WEBHOOK_URL']}/{name}"}
        store.routes.put(parse_route(doc, settings), create=True)
    started = time.perf_counter()
    for i in range(batches):
        store.buffer.append(IncomingMessage(user=f"55119{i:08d}", message="queria saber o preço", ttl_ms=60_000,
                                            metadata={"pushName": "Ana"}, flush_reason="request",
                                            route=names[i % len(names)]))  # fmt: skip
    elapsed = time.perf_counter() - started
    store.close()
    return batches / elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", default="10000,50000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--routes", default="", help="e.g. 1,100: batches spread over that many routes")
    parser.add_argument("--monitor-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the monitor, e.g. MONITOR_PROCESSES=1 or LOG_LEVEL=WARNING")  # fmt: skip
    args = parser.parse_args()
    monitor_env = dict(pair.split("=", 1) for pair in args.monitor_env)
    print(machine_facts(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
    sizes = [int(n) for n in args.batches.split(",")]
    if args.routes:  # one size, several route counts: the key is the route count
        sizes = [int(n) for n in args.routes.split(",")]
    results: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
    for round_ in range(args.rounds):  # interleaved, the order swapped each round: the VM's speed drifts
        for n in sizes[:: 1 if round_ % 2 == 0 else -1]:
            r = one_round(int(args.batches.split(",")[0]), tmp, monitor_env, n) if args.routes else one_round(
                n, tmp, monitor_env)  # fmt: skip
            results[n].append(r)
            what = f"{n} route(s)" if args.routes else f"{n} batches"
            print(
                f"  round {round_ + 1}, {what}: ingest {r['ingest']:,.0f} msg/s; one monitor "
                f"({r['processes']:.0f} processes) drains {r['drain']:,.0f} batches/s first-to-last arrival, "
                f"{r['wall']:,.0f}/s from its start; ratio {r['drain'] / r['ingest']:.2f}; "
                f"{r['cpu_us']:.0f} µs CPU per batch; {r['duplicates']:.0f} duplicates",
                flush=True,
            )
    for n, rounds in results.items():
        best = max(rounds, key=lambda r: r["drain"])
        what = f"{n} route(s)" if args.routes else f"{n} batches"
        print(f"  best of {len(rounds)}, {what}: drain {best['drain']:,.0f}/s vs ingest {best['ingest']:,.0f}/s "
              f"(ratio {best['drain'] / best['ingest']:.2f}), {best['cpu_us']:.0f} µs CPU per batch")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
