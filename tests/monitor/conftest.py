"""Fixtures of the monitor's parts: a real sender posting to the real receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from datafy.config import Settings
from datafy.monitor.sender import Sender
from devtools.receiver import Receiver
from tests.support.env import TEST_ENV


@pytest.fixture
def sender(receiver: Receiver) -> Iterator[Sender]:
    """A started Sender that POSTs to `receiver` (4 at a time); stopped after the test."""
    settings = Settings.from_env({**TEST_ENV, "WEBHOOK_URL": receiver.url, "WEBHOOK_CONCURRENCY": "4"})
    sender = Sender(settings, on_finished=lambda: None)
    sender.start()
    yield sender
    sender.stop()
