"""Shared fixtures: a real Redis/Valkey process, settings pointing at it, the app, and a real webhook receiver.

Every test in tests/e2e, tests/topology and tests/browser gets that folder's marker, which says what it costs:
`-m "not e2e and not topology and not browser"` (./dev test --fast) runs the unit layer alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from datafy.config import Settings
from datafy.http import create_app
from datafy.store import Store
from devtools.receiver import Receiver
from devtools.redis_server import RedisServer
from tests.support.env import TEST_ENV

TESTS = Path(__file__).parent
# Every test in one of these folders gets the marker of the same name (registered in pyproject.toml).
COST_MARKERS = (
    "e2e",  # real gunicorn and monitor processes
    "topology",  # a real Redis Cluster, Sentinel or TLS topology
    "browser",  # the dashboard in a real headless Chromium
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the cost of the folder it lives in, so that no file can forget it."""
    for item in items:
        parts = item.path.relative_to(TESTS).parts if item.path.is_relative_to(TESTS) else ()
        if len(parts) > 1 and parts[0] in COST_MARKERS:
            item.add_marker(parts[0])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real server for the whole session; tests that kill or freeze it start their own."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session server, emptied before each test."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def env(redis_server: RedisServer, redis_client: redis.Redis) -> dict[str, str]:
    """The environment a test's processes get; tests may change it before use. The session Redis is emptied
    first: an earlier test's SIGKILLed monitor leaves a beat that would take a share of the partitions."""
    return {**TEST_ENV, "REDIS_URL": redis_server.url}


@pytest.fixture
def settings(env: dict[str, str], redis_client: redis.Redis) -> Settings:
    """Settings built exactly as the processes build them, from `env`."""
    return Settings.from_env(env)


@pytest.fixture
def store(settings: Settings) -> Store:
    """The store of `settings`."""
    return Store(settings)


@pytest.fixture
def app(settings: Settings, store: Store) -> Flask:
    """The real Flask app on the real Redis."""
    return create_app(settings, store)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of `app` (requests go through the whole WSGI stack)."""
    return app.test_client()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP webhook receiver that answers 200 unless a test sets its behaviour."""
    server = Receiver().start()
    yield server
    server.stop()
