"""Load through the real API, every answer in a ledger: a burst of messages (send_many), or steady load for
failover tests (Load: threads that keep sending until stopped)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from devtools.oracle import Ledger


def send_many(ledger: Ledger, api_url: str, users: int, per_user: int = 1, ttl: float = 1, prefix: str = "u") -> None:
    """`per_user` messages to each of `users` chats, 16 at a time, recorded in `ledger`."""
    session = requests.Session()
    with ThreadPoolExecutor(16) as pool:
        for i in range(per_user):
            texts = [(f"{prefix}{u}", f"m{i}") for u in range(users)]
            list(pool.map(lambda pair: ledger.send(session, api_url, *pair, ttl=ttl), texts))


class Load:
    """Threads that keep sending messages to `users` until stopped, recording every answer in a ledger."""

    def __init__(self, api_url: str, users: list[str], threads: int = 6, ttl: float = 0.5) -> None:
        self.ledger, self.stop_event = Ledger(), threading.Event()
        self.threads = [
            threading.Thread(target=self._send, args=(api_url, users[w::threads], w, ttl)) for w in range(threads)
        ]

    def _send(self, api_url: str, users: list[str], worker: int, ttl: float) -> None:
        session, i = requests.Session(), 0
        while not self.stop_event.is_set():
            self.ledger.send(session, api_url, users[i % len(users)], f"w{worker}-{i}", ttl=ttl)
            i += 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join()
