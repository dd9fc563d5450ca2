"""Many clients in one deployment, with the real gunicorn, monitor and receiver: each route's batches reach its
own path, signed with its own secret, holding only its own messages; routes change under load and nothing
accepted is lost."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devtools.processes import system
from devtools.receiver import Receiver, Reply
from tests.support.gateway_bodies import fixture

ENV_KEY, ADMIN = "environment-ingest-key", {"X-API-Key": "admin-secret"}
SECRET_A, SECRET_B = "whsec_" + "QUFB" * 10, "whsec_" + "QkJC" * 10
KEY_A, KEY_B, KEY_C = "route-a-key-000000001", "route-b-key-000000002", "route-c-key-000000003"


def routed_env(env: dict[str, str], receiver: Receiver) -> dict[str, str]:
    return {**env, "WEBHOOK_URL": receiver.url, "API_KEY": ENV_KEY, "INGEST_AUTH": "on"}


def add_route(api: str, receiver: Receiver, name: str, key: str, **extra: object) -> None:
    doc = {"name": name, "webhook_url": f"{receiver.url}/{name}", "api_keys": [key], **extra}
    reply = requests.post(f"{api}/api/routes", json=doc, headers=ADMIN, timeout=5)
    assert reply.status_code == 201, reply.text


def send(api: str, key: str, user: str, text: str, ttl: float = 0.5) -> requests.Response:
    return requests.post(f"{api}/api/message", json={"user": user, "message": text, "ttl": ttl},
                         headers={"X-API-Key": key}, timeout=5)  # fmt: skip


def test_each_route_gets_its_own_batches_at_its_own_path_signed_with_its_own_secret(
    env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    with system(routed_env(env, receiver), tmp_path) as (api, _monitor):
        url = api.extra["url"]
        add_route(url, receiver, "loja-a", KEY_A, webhook_secret=SECRET_A)
        add_route(url, receiver, "loja-b", KEY_B, webhook_secret=SECRET_B)
        for key, text in ((KEY_A, "oi, sou de A"), (KEY_B, "oi, sou de B"), (ENV_KEY, "oi, sem rota"),
                          (KEY_A, "preço?"), (KEY_B, "horário?")):  # fmt: skip
            assert send(url, key, "5511999", text).status_code == 200
        assert receiver.wait_for(lambda r: len(r.delivered) == 3, timeout=15)
        # A route's key never reaches another route's chat: the same answer as for a chat that does not exist.
        batch_b = next(r.body["batch_id"] for r in receiver.received if r.path.endswith("/loja-b"))
        guard = requests.get(f"{url}/api/chats/5511999/batches/{batch_b}", headers={"X-API-Key": KEY_A}, timeout=5)
        assert guard.status_code == 404
        own = requests.get(f"{url}/api/chats/5511999/batches/{batch_b}", headers={"X-API-Key": KEY_B}, timeout=5)
        assert own.status_code == 200 and own.json()["state"] == "delivered"
        scrape = requests.get(f"{url}/metrics", headers=ADMIN, timeout=5).text
        assert 'datafy_route_messages_received_total{result="buffered",route="loja-a"} 2.0' in scrape
        assert 'route="default"' not in scrape  # the environment's traffic keeps its series as before
    by_path = {r.path.removeprefix("/webhook"): r for r in receiver.received}
    assert sorted(by_path) == ["", "/loja-a", "/loja-b"]
    a, b, plain = by_path["/loja-a"], by_path["/loja-b"], by_path[""]
    assert a.body["messages"] == ["oi, sou de A", "preço?"] and a.body["route"] == "loja-a"
    assert b.body["messages"] == ["oi, sou de B", "horário?"] and b.body["route"] == "loja-b"
    assert plain.body["messages"] == ["oi, sem rota"] and "route" not in plain.body  # as before routes
    assert a.body["user"] == b.body["user"] == plain.body["user"] == "5511999"
    Webhook(SECRET_A).verify(a.raw, a.headers)
    Webhook(SECRET_B).verify(b.raw, b.headers)
    assert "webhook-signature" not in plain.headers  # the environment has no WEBHOOK_SECRET
    for received, wrong in ((a, SECRET_B), (b, SECRET_A)):
        with pytest.raises(WebhookVerificationError):
            Webhook(wrong).verify(received.raw, received.headers)


def test_routes_change_under_load_and_no_accepted_message_is_lost(
    env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    """Route A is deleted (forced) and route C added while both are sending: every message acknowledged is
    delivered to its route's path, A's keys stop within 2 s, C's start within 2 s."""
    acked: Counter[tuple[str, str]] = Counter()
    refused_after_delete: list[float] = []
    stop = threading.Event()
    deleted_at: list[float] = []

    def load(key: str, route: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            reply = send(url, key, f"u{n % 20}", f"{route}-{n}", ttl=0.3)
            if reply.status_code == 200:
                acked[(route, f"{route}-{n}")] += 1
            elif reply.status_code == 401 and deleted_at:
                refused_after_delete.append(time.monotonic() - deleted_at[0])
                return
            time.sleep(0.005)

    with system(routed_env(env, receiver), tmp_path) as (api, _monitor):
        url = api.extra["url"]
        add_route(url, receiver, "loja-a", KEY_A)
        add_route(url, receiver, "loja-b", KEY_B)
        threads = [threading.Thread(target=load, args=(key, name)) for key, name in ((KEY_A, "loja-a"),
                                                                                     (KEY_B, "loja-b"))]  # fmt: skip
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        deleted_at.append(time.monotonic())
        assert requests.delete(f"{url}/api/routes/loja-a?force=true", headers=ADMIN, timeout=5).status_code == 200
        add_route(url, receiver, "loja-c", KEY_C)
        started = time.monotonic()
        while send(url, KEY_C, "c1", "loja-c-1").status_code != 200:
            assert time.monotonic() - started < 2
        acked[("loja-c", "loja-c-1")] += 1
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join(10)
        total = sum(acked.values())
        assert receiver.wait_for(lambda r: sum(len(b["messages"]) for b in r.delivered) >= total, timeout=20)
    assert refused_after_delete and refused_after_delete[0] < 2.0
    delivered: Counter[tuple[str, str]] = Counter()
    for received in receiver.received:
        route = received.path.removeprefix("/webhook/")
        assert received.body["route"] == route
        for message in received.body["messages"]:
            assert message.startswith(route + "-"), (route, message)  # only its own route's messages
    for batch in receiver.delivered:
        for message in batch["messages"]:
            delivered[(batch["route"], message)] += 1
    missing = set(acked) - set(delivered)
    assert not missing, sorted(missing)[:5]
    assert {route for route, _ in acked} == {"loja-a", "loja-b", "loja-c"}


def test_evolutions_global_webhook_reaches_two_routes_by_instance(
    env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    """One Evolution server, its global webhook pointed at us with the environment's key: each instance's
    messages go to the route that matches it; an instance no route matches stays on `default`."""
    with system(routed_env(env, receiver), tmp_path) as (api, _monitor):
        url = api.extra["url"]
        add_route(url, receiver, "loja-a", KEY_A, match={"evolution_instance": ["loja-a-zap"]})
        add_route(url, receiver, "loja-b", KEY_B, match={"evolution_instance": ["loja-b-zap"]})
        for instance in ("loja-a-zap", "loja-b-zap", "outra"):
            body = {**fixture("evolution/text"), "instance": instance}
            reply = requests.post(f"{url}/api/sources/evolution?ttl=0.5&key={ENV_KEY}", json=body, timeout=5)
            assert reply.status_code == 200 and reply.json()["results"][0]["status"] == "buffered", reply.text
        assert receiver.wait_for(lambda r: len(r.delivered) == 3, timeout=15), [
            (r.path, r.body.get("route")) for r in receiver.received
        ]
    paths = sorted(r.path.removeprefix("/webhook") for r in receiver.received)
    assert paths == ["", "/loja-a", "/loja-b"]  # an instance no route matches stays on `default`
    instances = {"/loja-a": "loja-a-zap", "/loja-b": "loja-b-zap", "": "outra"}
    for received in receiver.received:  # the chat id names the instance (sources/evolution.py), as before routes
        assert received.body["user"].startswith(f"evolution:{instances[received.path.removeprefix('/webhook')]}:")


@pytest.mark.parametrize("down_route", ["loja-a", None], ids=["a-route", "default"])
def test_a_receiver_that_is_down_delays_no_other_route(
    env: dict[str, str], receiver: Receiver, tmp_path: Path, down_route: str | None
) -> None:
    """One workflow answers 503 for a while (a route's, or the environment's WEBHOOK_URL): its breaker opens and
    its batches wait, while another route's batches keep arriving on time; when it answers again its batches
    follow within seconds, none dead-lettered."""
    down = threading.Event()
    down.set()

    def behaviour(batch: dict, nth: int) -> Reply:
        return Reply(503) if batch.get("route") == down_route and down.is_set() else Reply()

    receiver.behaviour = behaviour
    down_key = KEY_A if down_route else ENV_KEY
    with system(routed_env(env, receiver), tmp_path) as (api, monitor):
        url = api.extra["url"]
        add_route(url, receiver, "loja-a", KEY_A)
        add_route(url, receiver, "loja-b", KEY_B)
        for n in range(12):
            assert send(url, down_key, f"a{n}", f"down-{n}", ttl=0.2).status_code == 200
        assert receiver.wait_for(lambda r: "sending only one probe" in monitor.log(), timeout=15), monitor.log()
        lags = []
        for n in range(10):  # one receiver is down: every other route goes on as usual
            sent_at = time.monotonic()
            assert send(url, KEY_B, f"b{n}", f"loja-b-{n}", ttl=0.2).status_code == 200
            assert receiver.wait_for(lambda r, n=n: any(f"loja-b-{n}" in b["messages"] for b in r.delivered), 5)
            lags.append(time.monotonic() - sent_at)
        assert max(lags) < 1.5, lags  # ttl 0.2 s: on time, not at the probe's pace
        down.clear()
        back = time.monotonic()
        assert receiver.wait_for(lambda r: sum(b.get("route") == down_route for b in r.delivered) == 12, timeout=15)
        recovered = time.monotonic() - back
    assert recovered < 6, recovered  # one probe (every 2 s), then the catch-up
    assert "dead-lettered" not in monitor.log()
