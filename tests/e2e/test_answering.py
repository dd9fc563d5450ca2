"""One coherent answer while the AI is thinking, with real gunicorn, monitor and a receiver that thinks: the
workflow checks the guard right before it replies, then says answered or unanswered."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from devtools.processes import system
from devtools.receiver import Receiver, Reply


def post(api: str, user: str, text: str, ttl: float = 1) -> None:
    assert requests.post(f"{api}/api/message", json={"user": user, "message": text, "ttl": ttl,
                                                     "message_id": text}, timeout=5).status_code == 200  # fmt: skip


def test_guard_then_reply_and_guard_then_unanswered(env: dict[str, str], receiver: Receiver, tmp_path: Path) -> None:
    env["WEBHOOK_URL"] = receiver.url
    verdicts: list[tuple[str, bool]] = []
    done = threading.Event()

    def think(batch: dict, nth: int) -> Reply:
        """A workflow that answers 200 at once, thinks 2 s, checks the guard, then gives its verdict."""

        def later() -> None:
            time.sleep(2)
            base = f"{api.extra['url']}/api/chats/{batch['user']}/batches/{batch['batch_id']}"
            guard = requests.get(base, timeout=5).json()
            verdict = "unanswered" if guard["newer"] else "answered"
            assert requests.post(f"{base}/{verdict}", timeout=5).status_code == 200
            verdicts.append((batch["batch_id"], guard["newer"]))
            done.set()

        threading.Thread(target=later, daemon=True).start()
        return Reply()

    receiver.behaviour = think
    with system(env, tmp_path) as (api, _monitor):
        post(api.extra["url"], "5511", "oi")
        post(api.extra["url"], "5511", "quero o preço")
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=10)
        time.sleep(1)  # the AI is thinking ...
        post(api.extra["url"], "5511", "do modelo azul", ttl=3)  # ... and the customer goes on
        assert done.wait(10)
        assert receiver.wait_for(lambda r: len(r.delivered) == 2, timeout=15)
        done.clear()
        assert done.wait(10)  # the second batch: nothing newer, so the workflow answers it
    first, second = receiver.delivered
    assert first["messages"] == ["oi", "quero o preço"]
    assert verdicts[0] == (first["batch_id"], True)  # the guard said: drop this reply
    assert second["messages"] == ["oi", "quero o preço", "do modelo azul"]  # one coherent question
    assert second["carried_over"] == [first["batch_id"]]
    assert [i["message_id"] for i in second["items"]] == ["oi", "quero o preço", "do modelo azul"]
    assert [i["received_at"] for i in second["items"][:2]] == [i["received_at"] for i in first["items"]]
    assert verdicts[1] == (second["batch_id"], False)
    assert len(receiver.received) == 2  # no batch was POSTed twice
