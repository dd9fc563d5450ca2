"""The HTTP floor of delivery: how many POSTs per second requests.Session alone can make to the fast receiver.

No Redis, no JSON building: an upper bound for any Python monitor that POSTs one batch per request.

    ./dev bench http_floor [--posts 20000] [--processes 1,2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import fast_receiver  # noqa: E402

BODY = b'{"user":"5511999999999","messages":["oi","tudo bem?","queria saber o pre\\u00e7o"],"batch_id":"x"}'


def post_many(url: str, count: int, threads: int = 8) -> None:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=threads))
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: session.post(url, data=BODY, timeout=5), range(count)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    for processes in (int(p) for p in args.processes.split(",")):
        with fast_receiver(Path(tempfile.mkdtemp())) as (url, _records), ProcessPoolExecutor(processes) as pool:
            started = time.perf_counter()
            list(pool.map(post_many, [url] * processes, [args.posts // processes] * processes))
            elapsed = time.perf_counter() - started
        print(f"  {processes} process(es): {args.posts / elapsed:.0f} POSTs/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
