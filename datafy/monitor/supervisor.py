"""Several monitor processes in one container: one per CPU, so a single container uses every core it has.

The parent only supervises: it forks the processes, restarts one that dies, forwards SIGTERM and exits when
they have all stopped: 0 when every delivery finished, EXIT_UNFINISHED when one was left in flight (its lease
hands it to the next monitor, which sends it again). A process that stopped after a stop signal of its own
(one sent to the whole container) stops the container. The processes share nothing but Redis, exactly as
separate monitor containers do, so leases keep any two of them from delivering the same batch at once.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from datafy.config import Settings
from datafy.metrics import instruments
from datafy.monitor.stopping import EXIT_UNFINISHED, StopSignals
from datafy.retry import backoff

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
STOP_MARGIN_SECONDS = 10.0  # beyond SHUTDOWN_GRACE, for a process to close its connections and exit
HEALTHY_LIFE_SECONDS = 60.0  # a process that lived this long is restarted at once; one that dies young waits
MAX_RESTART_DELAY_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1

ProcessMain = Callable[[Settings, int], int]  # (settings, slot) -> exit code


class Supervisor:
    """Starts `count` processes running `main(settings, slot)` and keeps them running until SIGTERM/SIGINT."""

    def __init__(self, settings: Settings, count: int, main: ProcessMain) -> None:
        self.settings, self.count, self.main = settings, count, main
        self.context = multiprocessing.get_context("fork")  # nothing to pickle; the parent holds no connections
        self.processes: dict[int, BaseProcess] = {}
        self.started: dict[int, float] = {}
        self.young_deaths: dict[int, int] = dict.fromkeys(range(count), 0)  # deaths in a row within a minute
        self.restart_at: dict[int, float] = {}
        self.stopping = threading.Event()
        self.stop_reason = ""

    def run(self) -> int:
        """Supervise until stopped; returns 0 once every process has exited with its work done."""
        StopSignals(self._on_stop, self._hurry).install()
        log.info("monitor starting %d processes (MONITOR_PROCESSES)", self.count)
        for slot in range(self.count):
            self._start(slot)
        while not self.stopping.wait(POLL_SECONDS):
            self._restart_dead()
        log.info("%s: stopping %d monitor processes", self.stop_reason, self.count)
        return self._stop_all()

    def _start(self, slot: int) -> None:
        process = self.context.Process(
            target=_process_main, args=(self.main, self.settings, slot, os.getpid()), name=f"monitor-{slot}"
        )
        process.start()
        self.processes[slot], self.started[slot] = process, time.monotonic()
        self.restart_at.pop(slot, None)

    def _restart_dead(self) -> None:
        now = time.monotonic()
        for slot, process in self.processes.items():
            if process.is_alive():
                continue
            if process.exitcode in (0, EXIT_UNFINISHED) and slot not in self.restart_at:  # stopped by a signal
                self._on_stop(f"monitor process {slot} stopped by a signal")
                return
            if slot not in self.restart_at:
                instruments.mark_process_dead(process.pid or 0)
                lived = now - self.started[slot]
                self.young_deaths[slot] = 0 if lived >= HEALTHY_LIFE_SECONDS else self.young_deaths[slot] + 1
                delay = (
                    backoff(self.young_deaths[slot], 1.0, MAX_RESTART_DELAY_SECONDS) if self.young_deaths[slot] else 0
                )
                self.restart_at[slot] = now + delay
                log.error(
                    "monitor process %d (pid %s) exited with code %s after %.0fs; restarting in %.1fs",
                    slot, process.pid, process.exitcode, lived, delay,
                )  # fmt: skip
            if now >= self.restart_at[slot] and not self.stopping.is_set():
                self._start(slot)

    def _on_stop(self, why: str) -> None:
        """The first stop signal (or a process stopped by one): stop them all, gracefully. Copies are ignored."""
        if not self.stopping.is_set():
            self.stop_reason = why if " " in why else f"received {why}"
            self.stopping.set()

    def _hurry(self) -> None:
        """A second Ctrl-C: stop now; unfinished deliveries are sent again after their leases."""
        for process in self.processes.values():
            if process.pid and process.is_alive():
                os.kill(process.pid, signal.SIGKILL)
        os._exit(1)

    def _stop_all(self) -> int:
        for process in self.processes.values():
            if process.pid and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_grace + STOP_MARGIN_SECONDS
        code = 0
        for slot, process in self.processes.items():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("monitor process %d did not stop in time; killing it", slot)
                process.kill()
                process.join()
            if process.exitcode:  # unfinished deliveries, a crash, or killed above
                code = EXIT_UNFINISHED
            instruments.mark_process_dead(process.pid or 0)
        if code:
            log.warning("all monitor processes stopped; some left deliveries unfinished (sent again after their lease)")
        else:
            log.info("all monitor processes stopped")
        return code


def _process_main(main: ProcessMain, settings: Settings, slot: int, parent: int) -> None:
    """The body of one forked process: die with the parent, leave Ctrl-C to the parent, run the monitor."""
    for signum in (signal.SIGTERM, signal.SIGINT):  # not the parent's handler, inherited by the fork
        signal.signal(signum, signal.SIG_DFL)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent forwards SIGTERM; Ctrl-C reaches the whole group
    sys.exit(main(settings, slot))


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a killed container takes every process along)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
