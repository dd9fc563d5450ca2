"""The monitor's liveness, for container healthchecks: `python3 -m datafy.monitor.health` exits 0 when healthy.

The monitor serves no port to probe, so each of its processes touches a heartbeat file of its own after
each round that reached Redis. The container is healthy when there is at least one file and none is
stale: a process that is stuck, or cannot reach Redis, makes the whole container unhealthy.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

HEARTBEAT_DIR = Path(tempfile.gettempdir()) / "datafy-monitor"
BEAT_EVERY_SECONDS = 5.0
STALE_AFTER_SECONDS = 30.0


class Heartbeat:
    """Touches the heartbeat file of one monitor process at most every BEAT_EVERY_SECONDS."""

    def __init__(self, slot: int = 0, directory: Path = HEARTBEAT_DIR) -> None:
        self.path = directory / f"{slot}.alive"
        self.last = -BEAT_EVERY_SECONDS

    def beat(self) -> None:
        """Record that the loop is making progress (cheap to call every round)."""
        if time.monotonic() - self.last >= BEAT_EVERY_SECONDS:
            self.last = time.monotonic()
            with suppress(OSError):  # a read-only /tmp must not stop deliveries
                self.path.parent.mkdir(exist_ok=True)
                self.path.touch()

    def clear(self) -> None:
        """The process stopped: it no longer counts."""
        with suppress(OSError):
            self.path.unlink()


def reset(directory: Path = HEARTBEAT_DIR) -> None:
    """Forget the files of an earlier run (a container restarted with fewer processes); called once at start."""
    shutil.rmtree(directory, ignore_errors=True)


def unhealthy_reason(directory: Path = HEARTBEAT_DIR, now: float | None = None) -> str | None:
    """Why the monitor is not healthy, or None when every process beat within STALE_AFTER_SECONDS."""
    now = time.time() if now is None else now
    try:
        beats = {path.stem: now - path.stat().st_mtime for path in directory.glob("*.alive")}
    except OSError:
        beats = {}
    if not beats:
        return f"no monitor process has a heartbeat in {directory}"
    stale = sorted(slot for slot, age in beats.items() if age >= STALE_AFTER_SECONDS)
    if stale:
        return f"monitor process(es) {', '.join(stale)} made no progress for {STALE_AFTER_SECONDS:.0f} s"
    return None


if __name__ == "__main__":
    reason = unhealthy_reason()
    print(f"monitor unhealthy: {reason}" if reason else "monitor healthy")
    sys.exit(1 if reason else 0)
