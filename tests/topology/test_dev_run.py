"""`./dev run` (the README's first command) and `./dev run --cluster`: a curl'd message comes out as a batch."""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devtools.processes import PROJECT_ROOT
from devtools.redis_server import free_port


@pytest.mark.parametrize("option", [[], ["--cluster"]], ids=["single", "cluster"])
def test_dev_run_prints_the_batch_of_a_curled_message(option: list[str], tmp_path: Path) -> None:
    port, user = free_port(), f"55119{time.time_ns() % 10**8:08d}"  # .run/redis may hold earlier chats
    env = {**os.environ, "PORT": str(port), "INGEST_AUTH": "off",
           "REDIS_PORT": str(free_port()), "WEBHOOK_URL": ""}  # fmt: skip
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "devtools.run", *option], cwd=PROJECT_ROOT, env=env,
                               stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "redis-datafy is running" not in log.read_text() or "subscribed to" not in log.read_text():
            assert run.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        while not _answers(f"http://127.0.0.1:{port}/health"):  # gunicorn may come up after the monitor
            assert run.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        reply = requests.post(f"http://127.0.0.1:{port}/api/message",
                              json={"user": user, "message": "oi", "ttl": 0.5}, timeout=10)  # fmt: skip
        assert reply.status_code == 200, reply.text
        while f"--- batch for user '{user}': 1 message(s)" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        if option:
            assert "a 3-primary Cluster" in log.read_text() and "redis mode=cluster" in log.read_text()
        # ./dev status finds this run's Redis (.run/dev-run.env) and sees the batch delivered
        status_env = {**runpy.run_path(str(PROJECT_ROOT / "dev"))["dev_run_env"](), "PYTHONPATH": str(PROJECT_ROOT)}
        assert "REDIS_URL" in status_env or "REDIS_SENTINELS" in status_env
        for _ in range(10):  # the monitor counts a delivery in the round after the receiver answered
            printed = subprocess.run([sys.executable, "-m", "datafy", "status", "--json"], cwd=PROJECT_ROOT,
                                     env=status_env, capture_output=True, text=True, timeout=30)  # fmt: skip
            assert printed.returncode == 0, printed.stderr
            status = json.loads(printed.stdout)
            if status["deliveries"]["last_15_minutes"]["delivered"] >= 1:
                break
        assert status["monitors"]["alive"] >= 1 and status["deliveries"]["last_15_minutes"]["delivered"] >= 1
    finally:
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=40) == 0, log.read_text()[-3000:]
    assert not (PROJECT_ROOT / ".run" / "dev-run.env").exists(), "./dev status would find a Redis that is gone"


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
