"""The routes API and what a route's keys open, through the whole WSGI stack on a real Redis."""

from __future__ import annotations

from flask.testing import FlaskClient

from datafy.store import Store

ADMIN = {"X-API-Key": "admin-secret"}
KEY_A, KEY_B = "key-of-loja-a-0001", "key-of-loja-b-0002"
ADMIN_A = "admin-of-loja-a-0003"


def add_route(client: FlaskClient, name: str, key: str, **extra: object) -> dict:
    doc = {"name": name, "webhook_url": f"http://127.0.0.1:9/{name}", "api_keys": [key], **extra}
    reply = client.post("/api/routes", json=doc, headers=ADMIN)
    assert reply.status_code == 201, reply.get_json()
    return reply.get_json()["route"]


def test_a_route_is_created_listed_and_never_shows_its_keys_or_secrets(client: FlaskClient) -> None:
    secret = "whsec_" + "A" * 40
    extra = {"admin_keys": [ADMIN_A], "webhook_secret": secret, "defaults": {"ttl": 5, "flush_keywords": ["pronto"]},
             "match": {"evolution_instance": ["loja"]}}  # fmt: skip
    route = add_route(client, "loja-a", KEY_A, **extra)
    assert route["api_keys"] == ["…0001"] and route["admin_keys"] == ["…0003"]
    assert route["webhook_secret"] == ["…AAAA"]
    listing = client.get("/api/routes", headers=ADMIN).get_json()["routes"]
    assert [r["name"] for r in listing] == ["default", "loja-a"]
    text = client.get("/api/routes", headers=ADMIN).get_data(as_text=True)
    assert KEY_A not in text and ADMIN_A not in text and secret not in text and "admin-secret" not in text


def test_bad_routes_are_refused_naming_the_field(client: FlaskClient) -> None:
    cases = [
        ({"name": "loja-a"}, 400, "webhook_url"),
        ({"name": "loja-a", "webhook_url": "ftp://x"}, 400, "webhook_url"),
        ({"name": "Loja A", "webhook_url": "http://x"}, 400, "name"),
        ({"name": "x" * 41, "webhook_url": "http://x"}, 400, "name"),
        ({"name": "default", "webhook_url": "http://x"}, 400, "name"),
        ({"name": "a", "webhook_url": "http://x", "api_keys": ["short"]}, 400, "api_keys"),
        ({"name": "a", "webhook_url": "http://x", "webhook_secret": "whsec_short"}, 400, "webhook_secret"),
        ({"name": "a", "webhook_url": "http://x", "defaults": {"ttl": -1}}, 400, "defaults.ttl"),
        ({"name": "a", "webhook_url": "http://x", "defaults": {"colour": 1}}, 400, "defaults.colour"),
        (
            {"name": "a", "webhook_url": "http://x", "limits": {"max_pending_chats": "x"}},
            400,
            "limits.max_pending_chats",
        ),
        ({"name": "a", "webhook_url": "http://x", "match": {"telegram": ["x"]}}, 400, "match.telegram"),
        ({"name": "a", "webhook_url": "http://x", "api_keys": [KEY_A], "admin_keys": [KEY_A]}, 400, "admin_keys"),
        ({"name": "a", "webhook_url": "http://x", "api_keys": ["admin-secret-but-long"]}, 201, None),
    ]
    for doc, status, field in cases:
        reply = client.post("/api/routes", json=doc, headers=ADMIN)
        assert reply.status_code == status, (doc, reply.get_json())
        if field:
            assert reply.get_json()["error"]["field"] == field, doc


def test_a_key_or_match_of_another_route_or_of_the_environment_is_a_conflict(client: FlaskClient) -> None:
    add_route(client, "loja-a", KEY_A, match={"evolution_instance": ["loja"]})
    doc = {"name": "loja-b", "webhook_url": "http://x", "api_keys": [KEY_A]}
    assert client.post("/api/routes", json=doc, headers=ADMIN).status_code == 409
    doc = {"name": "loja-b", "webhook_url": "http://x", "match": {"evolution_instance": ["loja"]}}
    assert client.post("/api/routes", json=doc, headers=ADMIN).status_code == 409
    doc = {"name": "loja-a", "webhook_url": "http://x"}
    assert client.post("/api/routes", json=doc, headers=ADMIN).get_json()["error"]["code"] == "route_exists"
    doc = {"name": "loja-c", "webhook_url": "http://x", "admin_keys": ["admin-secret"]}
    assert client.post("/api/routes", json=doc, headers=ADMIN).status_code == 400  # too short, and the env's
    assert client.get("/api/routes", headers={"X-API-Key": KEY_A}).status_code == 401  # an ingest key is no admin


def test_the_same_user_under_two_routes_is_two_chats(client: FlaskClient, store: Store) -> None:
    add_route(client, "loja-a", KEY_A)
    add_route(client, "loja-b", KEY_B)
    for key, text in ((KEY_A, "oi de A"), (KEY_B, "oi de B"), (KEY_A, "tudo bem?")):
        assert client.post("/api/message", json={"user": "5511", "message": text, "ttl": 60},
                           headers={"X-API-Key": key}).status_code == 200  # fmt: skip
    client.post("/api/message", json={"user": "5511", "message": "sem rota", "ttl": 60})  # INGEST_AUTH=off: default
    a = client.get("/api/chats/5511?route=loja-a", headers=ADMIN).get_json()
    b = client.get("/api/chats/5511?route=loja-b", headers=ADMIN).get_json()
    default = client.get("/api/chats/5511", headers=ADMIN).get_json()
    assert (a["messages"], b["messages"], default["messages"]) == (["oi de A", "tudo bem?"], ["oi de B"], ["sem rota"])
    chats = client.get("/api/chats", headers=ADMIN).get_json()["chats"]
    assert sorted((c.get("route", "default"), c["user"]) for c in chats) == [
        ("default", "5511"), ("loja-a", "5511"), ("loja-b", "5511")]  # fmt: skip


def test_a_routes_keys_never_reach_another_routes_chats(client: FlaskClient, store: Store) -> None:
    add_route(client, "loja-a", KEY_A, admin_keys=[ADMIN_A])
    add_route(client, "loja-b", KEY_B)
    client.post("/api/message", json={"user": "b-only", "message": "oi", "flush": True}, headers={"X-API-Key": KEY_B})
    [claim] = store.outbox.claim(1, 60)
    store.outbox.ack(claim)
    batch = claim.batch_id
    own = {"X-API-Key": KEY_B}
    assert client.get(f"/api/chats/b-only/batches/{batch}", headers=own).status_code == 200
    for key in (KEY_A, ADMIN_A):
        other = {"X-API-Key": key}
        assert client.get(f"/api/chats/b-only/batches/{batch}", headers=other).status_code == 404
        assert client.post(f"/api/chats/b-only/batches/{batch}/unanswered", headers=other).status_code == 404
    client.post("/api/message", json={"user": "b-only", "message": "de novo", "ttl": 60}, headers=own)
    admin_a = {"X-API-Key": ADMIN_A}
    assert client.get("/api/chats/b-only", headers=admin_a).status_code == 404
    assert client.post("/api/chats/b-only/flush", headers=admin_a).status_code == 404
    assert client.delete("/api/chats/b-only", headers=admin_a).status_code == 404
    assert client.get("/api/chats", headers=admin_a).get_json()["chats"] == []
    assert [r["name"] for r in client.get("/api/routes", headers=admin_a).get_json()["routes"]] == ["loja-a"]
    assert client.get("/api/routes/loja-b", headers=admin_a).status_code == 404
    assert client.post("/api/routes", json={"name": "x", "webhook_url": "http://x"}, headers=admin_a).status_code == 403
    assert client.get("/api/chats/b-only?route=loja-b", headers=ADMIN).status_code == 200  # the env's sees all


def test_route_defaults_apply_when_the_request_does_not_say(client: FlaskClient) -> None:
    add_route(client, "loja-a", KEY_A, defaults={"ttl": 90, "flush_keywords": ["pronto"]})
    own = {"X-API-Key": KEY_A}
    reply = client.post("/api/message", json={"user": "u", "message": "oi"}, headers=own).get_json()
    assert reply["buffered"] == 1 and reply["flush_at"] > client.post(
        "/api/message", json={"user": "u2", "message": "oi"}).get_json()["flush_at"]  # fmt: skip
    assert client.post("/api/message", json={"user": "u", "message": "Pronto"}, headers=own).get_json()["flushed"]
    reply = client.post("/api/message", json={"user": "u3", "message": "Pronto"}).get_json()
    assert "flushed" not in reply  # the default route has no keywords


def test_a_route_cap_on_pending_chats_applies_within_the_global_one(client: FlaskClient) -> None:
    add_route(client, "loja-a", KEY_A, limits={"max_pending_chats": 16})  # one per partition
    own = {"X-API-Key": KEY_A}
    statuses = [client.post("/api/message", json={"user": f"c{i}", "message": "oi", "ttl": 60}, headers=own).status_code
                for i in range(80)]  # fmt: skip
    assert 16 <= statuses.count(200) < 80 and statuses.count(429) > 0
    assert client.post("/api/message", json={"user": "other", "message": "oi"}).status_code == 200  # default: free


def test_deleting_a_route_with_work_needs_force_and_its_keys_stop_at_once(client: FlaskClient) -> None:
    add_route(client, "loja-a", KEY_A)
    own = {"X-API-Key": KEY_A}
    client.post("/api/message", json={"user": "u", "message": "oi", "ttl": 60}, headers=own)
    reply = client.delete("/api/routes/loja-a", headers=ADMIN)
    assert reply.status_code == 409 and reply.get_json()["error"]["code"] == "route_busy"
    assert client.delete("/api/routes/loja-a?force=true", headers=ADMIN).status_code == 200
    assert client.post("/api/message", json={"user": "u", "message": "oi"}, headers=own).status_code == 200  # auth off
    assert client.get("/api/chats/u?route=loja-a", headers=ADMIN).get_json()["messages"] == ["oi"]  # kept
    assert client.get("/api/routes/loja-a", headers=ADMIN).status_code == 404
    doc = {"name": "loja-a", "webhook_url": "http://127.0.0.1:9/another-client", "api_keys": ["a-brand-new-key-0004"]}
    reply = client.post("/api/routes", json=doc, headers=ADMIN)  # its chat is still pending: not another client's
    assert reply.status_code == 409 and reply.get_json()["error"]["code"] == "route_busy"
    client.delete("/api/chats/u?route=loja-a", headers=ADMIN)
    add_route(client, "loja-a", "a-brand-new-key-0004")  # the name is free again


def test_put_changes_the_given_fields_and_keeps_the_keys(client: FlaskClient) -> None:
    add_route(client, "loja-a", KEY_A, defaults={"ttl": 5})
    reply = client.put("/api/routes/loja-a", json={"webhook_url": "http://127.0.0.1:9/new"}, headers=ADMIN)
    assert reply.status_code == 200
    route = reply.get_json()["route"]
    assert route["webhook_url"].endswith("/new") and route["api_keys"] == ["…0001"] and route["defaults"] == {"ttl": 5}
    assert client.put("/api/routes/nope", json={"webhook_url": "http://x"}, headers=ADMIN).status_code == 404


def test_a_route_admin_key_reads_its_own_routes_status_only(client: FlaskClient) -> None:
    add_route(client, "loja-a", KEY_A, admin_keys=[ADMIN_A])
    add_route(client, "loja-b", KEY_B)
    client.post("/api/message", json={"user": "u", "message": "oi", "ttl": 60}, headers={"X-API-Key": KEY_A})
    for n in range(3):
        client.post("/api/message", json={"user": f"b{n}", "message": "oi", "ttl": 60}, headers={"X-API-Key": KEY_B})
    own = client.get("/api/status", headers={"X-API-Key": ADMIN_A}).get_json()
    assert own["route"] == "loja-a" and own["chats"]["pending"] == 1 and own["monitors"]["processes"] == []
    assert own["deliveries"]["last_minute"]["delivered"] == 0  # the deployment's figures are not shown to a route
    every = client.get("/api/status", headers=ADMIN).get_json()
    assert "route" not in every and every["chats"]["pending"] == 4
