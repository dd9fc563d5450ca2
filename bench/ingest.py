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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import machine_facts, running_redis, start_gunicorn  # noqa: E402


def ensure_wrk() -> str:
    """wrk from PATH, installing Debian's package when we are root and it is missing."""
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    path = shutil.which("wrk")
    if not path:
        sys.exit("wrk is not installed: apt-get install wrk")
    return path


def run_wrk(wrk: str, url: str, connections: int, seconds: int) -> dict:
    threads = min(connections, 2)
    script = str(HERE / "wrk_message.lua")
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", script, url]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", default="8,32,128")
    args = parser.parse_args()
    wrk = ensure_wrk()
    levels = [int(c) for c in args.connections.split(",")]
    print(machine_facts())
    results: dict[str, dict[int, dict]] = {}
    with running_redis() as server:
        tmp = Path(tempfile.mkdtemp(prefix="datafy-bench-"))
        for name, target in [("ceiling", "bench.ceiling:app"), ("api", "api:app")]:
            with start_gunicorn(target, {"REDIS_URL": server.url, "WEBHOOK_URL": "http://127.0.0.1:9/"}, tmp) as url:
                run_wrk(wrk, f"{url}/api/message", 8, 2)  # warm-up
                results[name] = {c: run_wrk(wrk, f"{url}/api/message", c, args.seconds) for c in levels}
    print(f"\n{'connections':>11} | {'ceiling rps':>11} | {'api rps':>9} | ratio | api p50 ms | api p99 ms | non-2xx")
    for c in levels:
        ceiling, api = results["ceiling"][c], results["api"][c]
        print(
            f"{c:>11} | {ceiling['rps']:>11.0f} | {api['rps']:>9.0f} | {api['rps'] / ceiling['rps']:.2f}  | "
            f"{api['p50_ms']:>10.2f} | {api['p99_ms']:>10.2f} | {api['non2xx'] + api['socket_errors']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
