"""A receiver's return after an outage, with 3 or more monitor processes: whichever process holds the probe
turn can send any waiting batch, so one waiting chat, in any partition, is delivered within a probe's pace."""

from __future__ import annotations

from pathlib import Path

import pytest

from datafy.dev.receiver import Receiver
from datafy.store.breaker import PROBE_EVERY_SECONDS
from tests.e2e.recovery import measure_recovery

# A probe every PROBE_EVERY_SECONDS, plus a poll and a POST; room for a slow CI machine.
WITHIN_SECONDS = PROBE_EVERY_SECONDS + 1.5


@pytest.mark.parametrize(("containers", "processes"), [(2, 2), (4, 1), (8, 1)], ids=["2x2", "4x1", "8x1"])
def test_one_waiting_chat_is_delivered_soon_after_the_receiver_returns(
    env: dict[str, str], receiver: Receiver, tmp_path: Path, containers: int, processes: int
) -> None:
    took = measure_recovery(env, receiver, tmp_path, containers, processes, rounds=3)
    print(f"recovery {containers}x{processes}: {took} s")
    assert all(seconds <= WITHIN_SECONDS for seconds in took), took
