"""Schemathesis against the real gunicorn and Redis: no 5xx, every reply as documented, refusals store nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig

from datafy.http.openapi import document
from devtools.contract import Contract
from devtools.oracle import datafy_keys
from devtools.processes import running, start_api
from devtools.redis_server import RedisServer
from tests.support.env import TEST_ENV

EXAMPLES = 150  # per operation: about 45 s in all on two cores
INGEST_KEY, ADMIN_KEY, APP_SECRET = "ingest-secret", TEST_ENV["ADMIN_API_KEY"], "meta-app-secret"
PENDING_USER = "5511999999999"  # the example user of the document's admin routes
CHECKS = {
    "not_a_server_error": {"enabled": True},
    "status_code_conformance": {"enabled": True},
    "content_type_conformance": {"enabled": True},
    "response_schema_conformance": {"enabled": True},
    "response_headers_conformance": {"enabled": True},
    "negative_data_rejection": {"enabled": True},
    "unsupported_method": {"enabled": True},
    "allow_header_conformance": {"enabled": True},
    "missing_required_header": {"enabled": True},
    "ignored_auth": {"enabled": True},
    # Valid data may still be refused, as documented: a chat with nothing pending is 404, a signature is 401.
    "positive_data_acceptance": {"enabled": False},
    "use_after_free": {"enabled": False},
    "ensure_resource_availability": {"enabled": False},
}
UNDER_A_CHAT = (
    "/api/chats/{user}/flush",
    "/api/chats/{user}/pause",
    "/api/chats/{user}/resume",
    "/api/chats/{user}/batches/{batch_id}",
    "/api/chats/{user}/batches/{batch_id}/answered",
    "/api/chats/{user}/batches/{batch_id}/unanswered",
)
config = SchemathesisConfig.from_dict(
    {
        "seed": 13,
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        "generation": {"max-examples": EXAMPLES, "with-security-parameters": False, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "checks": CHECKS,
        "operations": [
            # OPTIONS /api/chats/x/flush truly allows GET and DELETE too: they address the chat "x/flush" (and so
            # for every route under a chat).
            {"include-path": path, "checks": {"allow_header_conformance": {"enabled": False}}}
            for path in UNDER_A_CHAT
        ],
    }
)
schema = schemathesis.openapi.from_dict(document(), config=config)


@pytest.fixture(scope="module")
def live(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Real gunicorn with the ingest key on and the WhatsApp route enabled."""
    env = {**TEST_ENV, "REDIS_URL": redis_server.url, "INGEST_AUTH": "on", "API_KEY": INGEST_KEY,
           "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": "verify-me"}  # fmt: skip
    api = start_api(env, tmp_path_factory.mktemp("openapi-fuzz"), workers=2)
    with running(api):
        yield api.extra["url"]


@pytest.fixture(scope="module")
def redis_module(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def auth_headers(path: str) -> dict[str, str]:
    """The key each route needs: admin routes the admin key, the rest the ingest key."""
    if path.startswith(("/api/chats", "/api/dead-letters", "/api/status", "/metrics", "/api/routes")):
        return {"Authorization": f"Bearer {ADMIN_KEY}"}
    return {"X-API-Key": INGEST_KEY}


def seed(live: str, session: requests.Session) -> None:
    """A pending chat for the documented example user, so admin routes have something to peek, flush or discard."""
    body = {"user": PENDING_USER, "message": "oi", "ttl": 600, "pushName": "Ana"}
    assert session.post(f"{live}/api/message", json=body, headers=auth_headers("/"), timeout=5).ok


def snapshot(client: redis.Redis) -> dict[str, bytes | None]:
    """Our keys and their contents (DUMP never decodes), to tell whether a request changed anything."""
    return {key: client.dump(key) for key in datafy_keys(client)}


@schema.parametrize()
def test_the_live_api_keeps_its_contract(case, live: str, redis_module: redis.Redis, session) -> None:
    redis_module.flushall()
    seed(live, session)
    before = snapshot(redis_module)
    response = case.call(base_url=live, session=session, headers=auth_headers(case.path), timeout=10)
    case.validate_response(response)
    Contract().check(case.method, response.request.path_url.split("?")[0], response.status_code, response.headers,
                     response.content)  # fmt: skip
    if 400 <= response.status_code < 500:
        assert snapshot(redis_module) == before, f"a refused request ({response.status_code}) changed Redis"
