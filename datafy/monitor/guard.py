"""The guard around each round of a loop that must never die (the monitor's main loop, the flusher)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from datafy.errors import StoreUnavailableError
from datafy.retry import backoff

log = logging.getLogger(__name__)

FIRST_WAIT_SECONDS = 0.1
MAX_WAIT_SECONDS = 2.0  # a Redis outage is retried at least this often


class LoopGuard:
    """Runs one round: logs an outage once and a bug with its traceback, and says how long to wait after either."""

    def __init__(self, name: str, outage_level: int = logging.WARNING) -> None:
        self.name, self.outage_level = name, outage_level
        self.failures = 0
        self.delay = 0.0

    def run(self, round_: Callable[[], None]) -> bool:
        """True when the round went through; else sets `delay` for the caller to wait."""
        try:
            round_()
        except Exception as exc:
            if not isinstance(exc, StoreUnavailableError):  # a bug or an unexpected reply: keep going
                log.exception("unexpected error in the %s; retrying", self.name)
            elif not self.failures:  # one warning per outage
                log.log(self.outage_level, "redis unavailable (%s); retrying until it is back", exc)
            self.failures += 1
            self.delay = backoff(self.failures, FIRST_WAIT_SECONDS, MAX_WAIT_SECONDS)
            return False
        if self.failures:
            log.log(min(self.outage_level, logging.INFO), "%s recovered; resuming", self.name)
        self.failures, self.delay = 0, 0.0
        return True
