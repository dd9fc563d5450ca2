"""The delivery oracle (tests, soak): every acknowledged message delivered, duplicates only under the same batch_id."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis
import requests

from datafy.dev.receiver import Receiver
from datafy.keys import KeySpace


@dataclass
class Ledger:
    """What the API acknowledged (2xx) and what it refused, per user, in send order."""

    acked: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, session: requests.Session, api_url: str, user: str, text: str, ttl: float = 1) -> int:
        """POST one message and record the outcome; connection failures count as refused."""
        try:
            status = session.post(
                f"{api_url}/api/message", json={"user": user, "message": text, "ttl": ttl}, timeout=30
            ).status_code
        except requests.RequestException:
            status = 0
        with self.lock:
            self.statuses[status] += 1
            (self.acked if 200 <= status < 300 else self.refused)[user].append(text)
        return status

    @property
    def acked_count(self) -> int:
        return sum(len(v) for v in self.acked.values())


def delivered_messages(receiver: Receiver) -> dict[str, list[str]]:
    """Per user, the messages of each distinct delivered batch, in sequence order."""
    batches: dict[str, dict] = {}
    for body in list(receiver.delivered):
        previous = batches.setdefault(body["batch_id"], body)
        assert previous["messages"] == body["messages"], "a batch_id was reused for other content"
    per_user: dict[str, list[str]] = defaultdict(list)
    for body in sorted(batches.values(), key=lambda b: (b["user"], b["sequence"])):
        per_user[body["user"]].extend(body["messages"])
    return per_user


def assert_all_delivered(ledger: Ledger, receiver: Receiver, client: redis.Redis | None = None) -> None:
    """Each acknowledged message arrives once per distinct batch, in order; refused ones at most once."""
    delivered = delivered_messages(receiver)
    for user, acked in ledger.acked.items():
        got = delivered.get(user, [])
        assert len(got) == len(set(got)), f"{user}: a message is in two different batches"
        missing = [m for m in acked if m not in got]
        assert not missing, f"{user}: {len(missing)} acknowledged message(s) never delivered: {missing[:5]}"
        sent_order = [m for m in got if m in set(acked)]
        assert sent_order == acked, f"{user}: delivered out of order"
    if client is not None:
        # A batch a killed monitor POSTed is acknowledged once its lease runs out and it is delivered again.
        wait_until_drained(client, timeout=20)
        leftovers = leftover_keys(client)
        assert not leftovers, f"keys left behind: {leftovers[:10]}"


def all_acked_delivered(ledger: Ledger):
    """A predicate for Receiver.wait_for."""

    def check(receiver: Receiver) -> bool:
        delivered = delivered_messages(receiver)
        return all(set(msgs) <= set(delivered.get(user, [])) for user, msgs in list(ledger.acked.items()))

    return check


def datafy_keys(client: redis.Redis, prefix: str = "datafy") -> list[str]:
    """Every key of ours in Redis but the deployment's own (the partition count, the monitors' beats, the
    per-minute delivery figures)."""
    keys = KeySpace(prefix)
    deployment = (keys.partition_count(), keys.monitors(), keys.stats_prefix())
    return sorted(key for key in client.scan_iter(f"{prefix}:*") if not key.startswith(deployment))


def leftover_keys(client: redis.Redis, prefix: str = "datafy") -> list[str]:
    """Our keys other than the ones meant to outlive a batch (sequence counters, a chat's other ids, dedupe
    windows, rate counters, the receiver's breaker)."""
    lasting = (":seq:", ":alias:", ":dedupe:", ":rate:", ":keyrate:", ":receiver:")
    return [k for k in datafy_keys(client, prefix) if not any(part in k for part in lasting)]


def wait_until_drained(client: redis.Redis, timeout: float, prefix: str = "datafy") -> bool:
    """Wait until no batch is pending in Redis: a batch POSTed by a killed monitor is acknowledged only when
    its lease runs out and another monitor delivers it again."""
    deadline = time.monotonic() + timeout
    while leftover_keys(client, prefix):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
