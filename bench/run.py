"""Run a benchmark by name: `./dev bench [NAME] [ARGS]`; without a name, every benchmark in turn (not the soak)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "ingest", "flush_lag", "delivery", "burst", "outage", "catch_up", "http_floor", "memory", "steady", "polling",
    "topologies", "answering", "routes",
]  # fmt: skip
EXTRA = ["soak"]


def main(argv: list[str]) -> int:
    names = BENCHMARKS if not argv or argv[0].startswith("-") else [argv[0]]
    rest = argv if not argv or argv[0].startswith("-") else argv[1:]
    for name in names:
        if name not in BENCHMARKS + EXTRA:
            print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS + EXTRA)}", file=sys.stderr)
            return 2
        print(f"\n=== {name} ===", flush=True)
        sys.argv = [str(HERE / f"{name}.py"), *rest]
        try:
            runpy.run_path(str(HERE / f"{name}.py"), run_name="__main__")
        except SystemExit as exit_:
            if exit_.code:
                return int(exit_.code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
