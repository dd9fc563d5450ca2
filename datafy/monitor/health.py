"""The monitor's liveness, for container healthchecks: `python3 -m datafy.monitor.health` exits 0 when healthy.

The monitor serves no port to probe, so its loop touches a heartbeat file after each round that reached
Redis. A stale or missing file means the monitor is stopped, stuck, or cannot reach Redis.
"""

from __future__ import annotations

import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

HEARTBEAT_FILE = Path(tempfile.gettempdir()) / "datafy-monitor.alive"
BEAT_EVERY_SECONDS = 5.0
STALE_AFTER_SECONDS = 30.0


class Heartbeat:
    """Touches HEARTBEAT_FILE at most every BEAT_EVERY_SECONDS."""

    def __init__(self, path: Path = HEARTBEAT_FILE) -> None:
        self.path = path
        self.last = -BEAT_EVERY_SECONDS

    def beat(self) -> None:
        """Record that the loop is making progress (cheap to call every round)."""
        if time.monotonic() - self.last >= BEAT_EVERY_SECONDS:
            self.last = time.monotonic()
            with suppress(OSError):  # a read-only /tmp must not stop deliveries
                self.path.touch()

    def clear(self) -> None:
        """The monitor stopped: it is no longer healthy."""
        with suppress(OSError):
            self.path.unlink()


def is_healthy(path: Path = HEARTBEAT_FILE) -> bool:
    """Whether a monitor's loop reached Redis within STALE_AFTER_SECONDS."""
    try:
        return time.time() - path.stat().st_mtime < STALE_AFTER_SECONDS
    except OSError:
        return False


if __name__ == "__main__":
    healthy = is_healthy()
    print("monitor healthy" if healthy else f"monitor unhealthy: no heartbeat in {HEARTBEAT_FILE} for 30 s")
    sys.exit(0 if healthy else 1)
