"""Stop signals, however many copies arrive.

SIGTERM and SIGINT both ask for a graceful stop. A container's stop can reach a process several times at
once: systemd (KillMode=control-group), `docker kill` and `kill -- -PGID` signal every process, and the
supervisor forwards its own copy. Only a second Ctrl-C (SIGINT) from a terminal cuts the grace period short;
SIGKILL after the grace period is the runtime's job.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

EXIT_UNFINISHED = 3  # a process stopped with deliveries still in flight (their leases hand them on)


class StopSignals:
    """Handlers that only set events: `on_stop(name)` on the first stop signal, `on_hurry()` on a second SIGINT."""

    def __init__(self, on_stop: Callable[[str], None], on_hurry: Callable[[], None]) -> None:
        self.on_stop, self.on_hurry = on_stop, on_hurry
        self.requested = threading.Event()
        self.interrupts = 0

    def install(self, interrupt: bool = True) -> StopSignals:
        """Handle SIGTERM, and SIGINT unless `interrupt` is False (a supervised process leaves Ctrl-C to its
        parent)."""
        signal.signal(signal.SIGTERM, self._handle)
        if interrupt:
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self.interrupts += 1
            if self.interrupts >= 2:
                self.on_hurry()
                return
        if not self.requested.is_set():
            self.requested.set()
            self.on_stop(signal.Signals(signum).name)
