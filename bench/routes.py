"""Routing must not slow ingest: POST /api/message with a route's key, against a table of 1 route and of 1,000
routes, measured interleaved (two Redis servers, two APIs, wrk alternating between them).

./dev bench routes [--seconds 10] [--connections 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import running_redis, start_gunicorn  # noqa: E402
from bench.ingest import ensure_wrk, run_wrk  # noqa: E402
from datafy.config import Settings  # noqa: E402
from datafy.routes.route import parse_route  # noqa: E402
from datafy.store import Store  # noqa: E402

ENV_KEY = "bench-environment-key"


def route_key(n: int) -> str:
    return f"bench-route-key-{n:06d}"


def add_routes(url: str, count: int) -> None:
    """`count` routes, each with its own key and webhook path, written straight to the store."""
    settings = Settings.from_env({"REDIS_URL": url, "API_KEY": ENV_KEY})
    store = Store(settings)
    for n in range(count):
        doc = {"name": f"client-{n}", "webhook_url": f"http://127.0.0.1:9/client-{n}", "api_keys": [route_key(n)]}
        store.routes.put(parse_route(doc, settings), create=True)
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    wrk = ensure_wrk()
    tables = {"1 route": 1, "1,000 routes": 1000}
    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
        urls = {}
        for name, count in tables.items():
            server = stack.enter_context(running_redis())
            add_routes(server.url, count)
            env = {"REDIS_URL": server.url, "WEBHOOK_URL": "http://127.0.0.1:9/", "API_KEY": ENV_KEY,
                   "INGEST_AUTH": "on", "RATE_LIMIT_PER_USER": "0"}  # fmt: skip
            urls[name] = stack.enter_context(start_gunicorn("api:app", env, tmp))
        time.sleep(3)  # every worker booted
        key = route_key(0)  # a route that exists in both tables
        for url in urls.values():
            run_wrk(wrk, f"{url}/api/message", 8, 2, headers={"X-API-Key": key})  # warm-up
        runs: dict[str, list[dict]] = {name: [] for name in tables}
        for n in range(args.rounds):  # interleaved, the order swapped each round: this machine's speed drifts
            for name, url in list(urls.items())[:: 1 if n % 2 == 0 else -1]:
                runs[name].append(run_wrk(wrk, f"{url}/api/message", args.connections, args.seconds,
                                          headers={"X-API-Key": key}))  # fmt: skip
    print(f"\n{'table':>12} | {'req/s per round':>26} | {'p99 ms per round':>24} | non-2xx")
    for name, results in runs.items():
        rps = ", ".join(f"{r['rps']:.0f}" for r in results)
        p99 = ", ".join(f"{r['p99_ms']:.1f}" for r in results)
        bad = sum(r["non2xx"] + r["socket_errors"] for r in results)
        print(f"{name:>12} | {rps:>26} | {p99:>24} | {bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
