"""Ingest throughput: wrk against the API (production gunicorn config) and against the framework ceiling.

./dev bench ingest [--seconds 10] [--connections 8,32,128]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import running_redis, start_gunicorn  # noqa: E402


def ensure_wrk() -> str:
    """wrk from PATH, installing Debian's package when we are root and it is missing."""
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    path = shutil.which("wrk")
    if not path:
        sys.exit("wrk is not installed: apt-get install wrk")
    return path


def run_wrk(wrk: str, url: str, connections: int, seconds: int, headers: dict[str, str] | None = None) -> dict:
    threads = min(connections, 2)
    script = str(HERE / "wrk_message.lua")
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", script]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    args.append(url)
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", default="8,32,128")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    wrk = ensure_wrk()
    levels = [int(c) for c in args.connections.split(",")]
    results: dict[str, dict[int, dict]] = {"bare": {}, "ceiling": {}, "floor": {}, "api": {}}
    targets = {"bare": "bench.ceiling:bare_wsgi", "ceiling": "bench.ceiling:app",
               "floor": "bench.ceiling:app_with_redis_round_trip", "api": "api:app"}  # fmt: skip
    with running_redis() as server, ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
        env = {"REDIS_URL": server.url, "WEBHOOK_URL": "http://127.0.0.1:9/"}
        urls = {name: stack.enter_context(start_gunicorn(target, env, tmp)) for name, target in targets.items()}
        time.sleep(3)  # every worker booted
        for url in urls.values():
            run_wrk(wrk, f"{url}/api/message", 8, 2)  # warm-up
        # Interleaved, best of `rounds`: this machine's speed drifts, and a ratio needs both sides measured alike.
        for c in levels:
            for _ in range(args.rounds):
                for name, url in urls.items():
                    result = run_wrk(wrk, f"{url}/api/message", c, args.seconds)
                    if result["rps"] > results[name].get(c, {"rps": 0})["rps"]:
                        results[name][c] = result
    print(f"\n{'conns':>5} | {'bare':>5} | {'ceiling':>7} | {'floor':>5} | {'api':>5} | api/ceiling | floor/ceiling "
          f"| api p50 ms | api p99 ms | api non-2xx")  # fmt: skip
    for c in levels:
        bare, ceiling, floor, api = (results[name][c] for name in ("bare", "ceiling", "floor", "api"))
        print(
            f"{c:>5} | {bare['rps']:>5.0f} | {ceiling['rps']:>7.0f} | {floor['rps']:>5.0f} | {api['rps']:>5.0f} | "
            f"{api['rps'] / ceiling['rps']:>11.2f} | {floor['rps'] / ceiling['rps']:>13.2f} | "
            f"{api['p50_ms']:>10.2f} | {api['p99_ms']:>10.2f} | {api['non2xx'] + api['socket_errors']}"
        )
    print(
        "bare: Gunicorn and a plain WSGI function parsing the JSON; ceiling: the same in Flask, no Redis; floor: the "
        "ceiling plus one Redis PING (req/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
