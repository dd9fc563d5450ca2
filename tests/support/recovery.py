"""Recovery after a receiver outage, measured with real monitor processes: one waiting chat per round."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from datafy.config import Settings
from datafy.model import IncomingMessage
from datafy.store import Store
from datafy.store.breaker import PROBE_EVERY_SECONDS, QUIET_SECONDS
from devtools.processes import running, start_monitor
from devtools.receiver import Receiver, Reply

# A probe every PROBE_EVERY_SECONDS, plus a poll and a POST; room for a slow CI machine.
WITHIN_SECONDS = PROBE_EVERY_SECONDS + 1.5


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.02)


def measure_recovery(
    env: dict[str, str], receiver: Receiver, tmp_path: Path, containers: int, processes: int, rounds: int
) -> list[float]:
    """Seconds from the receiver's return to the waiting chat's delivery, for each round, with `containers`
    monitors of `processes` processes each."""
    # Enough quick retries for the breaker to open (5 failures in a row) before the chat is dead-lettered.
    env = {**env, "WEBHOOK_URL": receiver.url, "MONITOR_PROCESSES": str(processes),
           "WEBHOOK_RETRY_SCHEDULE": ",".join(["0.2s"] * 10)}  # fmt: skip
    store = Store(Settings.from_env(env))
    down = [True]
    receiver.behaviour = lambda batch, nth: Reply(status=500) if down[0] else Reply()
    took = []
    with ExitStack() as stack:
        for i in range(containers):
            monitor = start_monitor(env, tmp_path, name=f"monitor-{i}")
            stack.enter_context(running(monitor))
        wait_for(lambda: len(store.monitors.alive()) == containers * processes, 15, "every process beats")
        for round_ in range(rounds):
            down[0] = True
            time.sleep(QUIET_SECONDS if round_ else 0)  # the last round's success: the breaker opens later
            user = f"5521{round_:04d}{time.monotonic_ns() % 9973}"
            store.buffer.append(IncomingMessage(user=user, message="oi", ttl_ms=1000, flush_reason="request"))
            # Opens after 5 failures in a row and 5 s with no success (the last round's return).
            wait_for(lambda: int(store.client.hget(store.breaker.key, "open_since_ms") or 0) > 0, 20, "breaker open")
            time.sleep(2.5)  # a probe or two fails
            down[0] = False
            back = time.time()
            wait_for(lambda u=user: any(b["user"] == u for b in receiver.delivered), 30, f"round {round_} delivered")
            arrived = max(r.at for r in receiver.received if r.body["user"] == user)
            took.append(round(arrived - back, 2))
    store.close()
    return took
