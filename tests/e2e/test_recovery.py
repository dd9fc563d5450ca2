"""A receiver's return after an outage, with 3 or more monitor processes: whichever process holds the probe
turn can send any waiting batch, so one waiting chat, in any partition, is delivered within a probe's pace."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from datafy.config import Settings
from datafy.model import IncomingMessage
from datafy.store import Store
from devtools.processes import running, start_monitor
from devtools.receiver import Receiver, Reply
from tests.support.recovery import WITHIN_SECONDS, measure_recovery


@pytest.mark.parametrize(("containers", "processes"), [(2, 2), (4, 1), (8, 1)], ids=["2x2", "4x1", "8x1"])
def test_one_waiting_chat_is_delivered_soon_after_the_receiver_returns(
    env: dict[str, str], receiver: Receiver, tmp_path: Path, containers: int, processes: int
) -> None:
    took = measure_recovery(env, receiver, tmp_path, containers, processes, rounds=3)
    print(f"recovery {containers}x{processes}: {took} s")
    assert all(seconds <= WITHIN_SECONDS for seconds in took), took


def test_a_receiver_that_answers_once_between_failures_dead_letters_nothing(
    env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Chats wait out an outage; the receiver answers one POST (the breaker closes and every waiting batch goes
    out at once) and fails again for a while. With 3 retry steps, counting those failures would dead-letter
    every batch within a second."""
    env.update(WEBHOOK_URL=receiver.url, MONITOR_PROCESSES="2")
    state = {"mode": "down"}

    def behaviour(batch: dict, nth: int) -> Reply:
        if state["mode"] == "once":
            state["mode"] = "down"
            return Reply()
        return Reply(status=500) if state["mode"] == "down" else Reply()

    receiver.behaviour = behaviour
    store = Store(Settings.from_env(env))
    monitor = start_monitor(env, tmp_path)
    with running(monitor):
        for i in range(10):
            store.buffer.append(IncomingMessage(user=f"55{i}", message="oi", ttl_ms=1000, flush_reason="request"))
        assert receiver.wait_for(lambda r: "sending only one probe" in monitor.log(), timeout=10)
        time.sleep(2.5)
        state["mode"] = "once"
        assert receiver.wait_for(lambda r: "answers again" in monitor.log(), timeout=10)
        time.sleep(6)  # failing again: the breaker reopens after 5 failures and 5 s without an answer
        state["mode"] = "up"
        assert receiver.wait_for(lambda r: len(r.delivered) == 10, timeout=20), monitor.log()
    assert "dead-lettered" not in monitor.log()
    assert redis_client.zcard(store.keys.partition(0).dead) == 0
