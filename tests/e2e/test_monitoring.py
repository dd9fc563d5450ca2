"""Status and metrics of the real system: gunicorn with 2 workers, a monitor of 2 processes, a real receiver."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from datafy.monitor.partitions import HANDOVER_SECONDS
from devtools.processes import Proc, free_port, process_env, running, start_api, start_monitor, wait_http
from devtools.receiver import Receiver, Reply

ADMIN = {"Authorization": "Bearer admin-secret"}
USERS = 24


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def per_process(directory: Path, tmp_path: Path, name: str, labels: tuple[tuple[str, str], ...]) -> list[float]:
    """The value of one counter in each process's file of a multiprocess directory (each read on its own)."""
    values = []
    for index, path in enumerate(sorted(directory.glob("counter_*.db"))):
        alone = tmp_path / f"alone-{directory.name}-{index}"
        alone.mkdir()
        shutil.copy(path, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(alone))
        values.append(sum(s.value for f in registry.collect() for s in f.samples
                          if s.name == name and tuple(sorted(s.labels.items())) == labels))  # fmt: skip
    return values


def post(url: str, user: str, **fields: object) -> None:
    reply = requests.post(f"{url}/api/message", json={"user": user, "message": "oi", **fields}, timeout=5)
    assert reply.status_code == 200, reply.text


def status(url: str) -> dict:
    reply = requests.get(f"{url}/api/status", headers=ADMIN, timeout=5)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_status_and_metrics_add_up_over_workers_and_processes(
    env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The session's Redis is emptied first (redis_client): earlier tests' deliveries this minute would count."""
    receiver = Receiver(lambda batch, nth: Reply(400 if batch["user"].startswith("dead") else 200)).start()
    metrics_port = free_port()
    api_dir, monitor_dir = tmp_path / "api-metrics", tmp_path / "monitor-metrics"
    env.update(WEBHOOK_URL=receiver.url, MONITOR_PROCESSES="2", METRICS_PORT=str(metrics_port), HOST="127.0.0.1")
    api = start_api({**env, "PROMETHEUS_MULTIPROC_DIR": str(api_dir)}, tmp_path, workers=2)
    with running(api):
        monitor = start_monitor({**env, "PROMETHEUS_MULTIPROC_DIR": str(monitor_dir)}, tmp_path)
        with running(monitor):
            url = api.extra["url"]
            deadline = time.monotonic() + 20  # both processes beat, so each takes its share of the partitions
            while monitor.log().count("partitions shared by 2") < 2 or status(url)["monitors"]["alive"] < 2:
                assert time.monotonic() < deadline, monitor.log()
                time.sleep(0.1)
            time.sleep(HANDOVER_SECONDS + 1)  # until then each still polls everything (datafy/monitor/partitions.py)
            with ThreadPoolExecutor(8) as pool:  # concurrent connections reach both workers
                list(pool.map(lambda i: post(url, f"user-{i}", ttl=0.2), range(USERS)))
            post(url, "dead-1", ttl=0.2)
            post(url, "waiting-1", ttl=50)  # still pending, and due in the next minute, at the checks
            post(url, "waiting-2", ttl=600)
            assert requests.post(f"{url}/api/message", json={"user": "x"}, timeout=5).status_code == 400
            assert receiver.wait_for(lambda r: len({b["user"] for b in r.delivered}) == USERS, timeout=20)

            # Every POST the monitor saw answered 2xx counts: a duplicate after a timeout on a loaded machine too
            deadline = time.monotonic() + 10
            while (body := status(url))["deliveries"]["last_15_minutes"]["delivered"] < USERS or (
                body["dead_letters"] < 1
            ):
                assert time.monotonic() < deadline, body
                time.sleep(0.2)
            delivered_posts = body["deliveries"]["last_15_minutes"]["delivered"]
            # Each 2xx answer counts, a redelivery too: between the batches and every POST the receiver read.
            assert USERS <= delivered_posts <= len(receiver.received)
            assert body["chats"] == {"pending": 2, "due_next_minute": 1, "held": 0, "paused": 0}
            assert body["dead_letters"] == 1 and body["batches"]["ready"] == 0
            assert body["monitors"]["alive"] == 2
            assert sorted(p["pid"] for p in body["monitors"]["processes"]) == sorted(monitor.children())
            assert all(p["last_beat_at"] >= p["started_at"] for p in body["monitors"]["processes"])
            assert body["receiver"]["state"] == "closed"  # a 400 is an answer: the receiver is up
            window, last = body["deliveries"]["last_15_minutes"], body["deliveries"]["last_minute"]
            assert 0 <= window["lag_p50_ms"] <= window["lag_p99_ms"] < 5000
            assert 0 < last["delivered"] <= delivered_posts  # less only when a minute began since the deliveries
            assert sum(m["delivered"] for m in body["deliveries"]["per_minute"]) == delivered_posts

            terminal = subprocess.run([sys.executable, "-m", "datafy", "status", "--json"], env=process_env(env),
                                      capture_output=True, text=True, timeout=30)  # fmt: skip
            assert terminal.returncode == 0, terminal.stderr
            printed = json.loads(terminal.stdout)
            assert printed["chats"] == body["chats"] and printed["monitors"]["alive"] == 2
            text = subprocess.run([sys.executable, "-m", "datafy", "status"], env=process_env(env),
                                  capture_output=True, text=True, timeout=30).stdout  # fmt: skip
            assert "2 pending, 1 due in the next minute" in text and "2 alive" in text and "dead letters 1" in text

            api_metrics = requests.get(f"{url}/metrics", headers=ADMIN, timeout=5)
            assert api_metrics.status_code == 200 and api_metrics.headers["Content-Type"].startswith("text/plain")
            got = samples(api_metrics.text)
            received = "datafy_messages_received_total"
            assert got[(received, (("result", "buffered"),))] == USERS + 3
            assert got[(received, (("result", "rejected"),))] == 1
            assert got[("datafy_pending_chats", ())] == 2 and got[("datafy_dead_letters", ())] == 1
            assert got[("datafy_monitors_alive", ())] == 2 and got[("datafy_redis_up", ())] == 1
            buffered = per_process(api_dir, tmp_path, received, (("result", "buffered"),))
            assert len(buffered) >= 2 and sum(buffered) == USERS + 3
            assert sum(1 for value in buffered if value) >= 2, f"one worker took every request: {buffered}"

            scraped = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
            assert scraped.status_code == 200, scraped.text
            got = samples(scraped.text)
            attempts = "datafy_delivery_attempts_total"
            assert got[(attempts, (("outcome", "delivered"),))] == delivered_posts
            assert got[(attempts, (("outcome", "dead_letter"),))] == 1
            assert got[("datafy_delivery_lag_seconds_count", ())] == delivered_posts
            assert got[("datafy_delivery_duration_seconds_count", ())] >= delivered_posts + 1
            assert got[("datafy_batches_sealed_total", (("reason", "ttl"),))] == USERS + 1
            assert got[("datafy_pending_chats", ())] == 2 and got[("datafy_monitors_alive", ())] == 2
            delivered = per_process(monitor_dir, tmp_path, attempts, (("outcome", "delivered"),))
            assert sum(delivered) == delivered_posts and sum(1 for value in delivered if value) == 2, delivered
    receiver.stop()


def test_metrics_need_a_token_when_one_is_set(env: dict[str, str], receiver: Receiver, tmp_path: Path) -> None:
    metrics_port = free_port()
    env.update(WEBHOOK_URL=receiver.url, MONITOR_PROCESSES="1", METRICS_PORT=str(metrics_port), HOST="127.0.0.1")
    temp = tmp_path / "tmp"
    temp.mkdir()
    api = start_api({**env, "ADMIN_API_KEY": "", "TMPDIR": str(temp)}, tmp_path, workers=1)
    with running(api):
        disabled = requests.get(f"{api.extra['url']}/metrics", timeout=5)
        assert disabled.status_code == 403 and disabled.json()["error"]["code"] == "metrics_disabled"
        assert len(list(temp.glob("datafy-api-metrics-*"))) == 1  # no PROMETHEUS_MULTIPROC_DIR: one made per run
    assert not list(temp.glob("datafy-api-metrics-*")), "the temporary directory outlived gunicorn"

    env["METRICS_TOKEN"] = "scrape-token"
    monitor = start_monitor(env, tmp_path)
    with running(monitor):
        scrape = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_http(monitor, scrape, ok_statuses=(401,))
        assert requests.get(scrape, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
        ok = requests.get(scrape, headers={"Authorization": "Bearer scrape-token"}, timeout=5)
        assert ok.status_code == 200 and "datafy_delivery_attempts_total" in ok.text
    api = start_api(env, tmp_path, workers=1)
    with running(api):
        url = f"{api.extra['url']}/metrics"
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, headers={"Authorization": "Bearer scrape-token"}, timeout=5).status_code == 200


def test_a_taken_metrics_port_is_logged_and_the_monitor_keeps_running(
    env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    first_port = free_port()
    env.update(WEBHOOK_URL=receiver.url, MONITOR_PROCESSES="1", METRICS_PORT=str(first_port), HOST="127.0.0.1")
    first = start_monitor(env, tmp_path, name="first")
    with running(first):
        second: Proc = start_monitor(env, tmp_path, name="second")
        with running(second):
            assert "cannot listen on 127.0.0.1" in second.log() and "METRICS_PORT" in second.log()
            assert second.process.poll() is None


def test_metrics_add_up_with_no_multiprocess_dir_set(env: dict[str, str], tmp_path: Path) -> None:
    """Regression: without PROMETHEUS_MULTIPROC_DIR (the default) gunicorn's master imported prometheus_client
    (through its logger class) before it set the variable, and the API's /metrics had only the gauges."""
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
    with running(api := start_api(env, tmp_path, workers=2)):
        url = api.extra["url"]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: post(url, f"plain-{i}", ttl=60), range(20)))
        auth = {"Authorization": f"Bearer {env['ADMIN_API_KEY']}"}
        found = samples(requests.get(f"{url}/metrics", headers=auth, timeout=5).text)
    assert found[("datafy_messages_received_total", (("result", "buffered"),))] == 20
    assert "PROMETHEUS_MULTIPROC_DIR" not in api.log()  # no warning that figures are lost
