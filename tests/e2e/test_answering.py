"""One coherent answer while the AI is thinking, with real gunicorn, monitor and a receiver that thinks: the
workflow checks the guard right before it replies, then says answered or unanswered."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from devtools.processes import running, start_api, start_monitor, system
from devtools.receiver import Receiver, Reply
from devtools.redis_server import RedisServer
from tests.support.persistence import wait_for_aof_written


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


def await_env(env: dict[str, str], receiver: Receiver) -> dict[str, str]:
    return {**env, "WEBHOOK_URL": receiver.url, "AWAIT_ANSWER": "on", "ANSWER_TIMEOUT": "3"}


@pytest.mark.parametrize("verdict", ["answered", "unanswered", None], ids=["answered", "unanswered", "timeout"])
def test_await_answer_sends_one_batch_at_a_time(
    env: dict[str, str], receiver: Receiver, tmp_path: Path, verdict: str | None
) -> None:
    """The first batch goes out; what the customer writes while the AI thinks waits for the verdict (or the
    timeout), then leaves at once, with the verdict as its flush_reason."""
    with system(await_env(env, receiver), tmp_path) as (api, _monitor):
        url = api.extra["url"]
        post(url, "5511", "oi", ttl=0.5)
        assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=10)
        first = receiver.delivered[0]
        post(url, "5511", "do modelo azul", ttl=0.5)
        time.sleep(1.5)  # its deadline passed: held
        assert len(receiver.delivered) == 1
        given = time.monotonic()
        if verdict:
            base = f"{url}/api/chats/5511/batches/{first['batch_id']}"
            assert requests.post(f"{base}/{verdict}", timeout=5).status_code == 200
        assert receiver.wait_for(lambda r: len(r.delivered) == 2, timeout=10)
        took = time.monotonic() - given
    second = receiver.delivered[1]
    assert second["flush_reason"] == (verdict or "answer_timeout")
    expected = ["oi", "do modelo azul"] if verdict == "unanswered" else ["do modelo azul"]
    assert second["messages"] == expected
    assert took < (1.5 if verdict else 3.0)  # at once after the verdict; else when the 3 s hold ran out
    assert len(receiver.received) == 2


@pytest.mark.parametrize("fault", ["kill-monitor", "restart-redis"])
def test_a_hold_survives_a_monitor_kill_and_a_redis_restart(
    env: dict[str, str], receiver: Receiver, tmp_path: Path, fault: str
) -> None:
    server = RedisServer().start()  # a Redis of this test's own, free to be restarted
    env = {**await_env(env, receiver), "REDIS_URL": server.url, "ANSWER_TIMEOUT": "60"}
    try:
        api = start_api(env, tmp_path)
        monitor = start_monitor(env, tmp_path)
        with running(api):
            url = api.extra["url"]
            post(url, "5511", "oi", ttl=0.5)
            assert receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=10)
            post(url, "5511", "do modelo azul", ttl=0.5)
            time.sleep(1.5)
            if fault == "kill-monitor":
                monitor.kill()
            else:
                wait_for_aof_written(redis.Redis.from_url(server.url))
                server.stop(signal.SIGKILL)
                server.start()
            monitor = start_monitor(env, tmp_path, name="monitor-2") if fault == "kill-monitor" else monitor
            with running(monitor):
                time.sleep(2)
                assert len(receiver.delivered) == 1  # still held: the hold lives in Redis
                base = f"{url}/api/chats/5511/batches/{receiver.delivered[0]['batch_id']}"
                deadline = time.monotonic() + 10
                while requests.post(f"{base}/answered", timeout=5).status_code != 200:  # 503 until Redis is back
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
                assert receiver.wait_for(lambda r: len(r.delivered) == 2, timeout=10)
    finally:
        server.cleanup()
    assert receiver.delivered[1]["messages"] == ["do modelo azul"]
    assert receiver.delivered[1]["flush_reason"] == "answered"
