"""A leaked ingest key, tried against the real gunicorn: each abuse meets a bound, and Redis stays small."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

from devtools.processes import running, start_api


def post_many(url: str, bodies: list[dict], key: str = "") -> list[requests.Response]:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))
    headers = {"X-API-Key": key} if key else {}
    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(lambda body: session.post(f"{url}/api/message", json=body, headers=headers), bodies))


def test_chats_sealed_at_once_count_toward_max_pending_chats(
    env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    """3,000 new user ids, each flushed at once, with no monitor delivering them: the cap holds."""
    env["MAX_PENDING_CHATS"] = "16"
    api = start_api(env, tmp_path)
    with running(api):
        bodies = [{"user": f"leak{i}", "message": "x", "flush": True} for i in range(3000)]
        replies = post_many(api.extra["url"], bodies)
    codes = Counter(reply.status_code for reply in replies)
    assert codes[200] <= 16 and codes[200] + codes[429] == 3000, codes
    refused = next(reply for reply in replies if reply.status_code == 429)
    assert refused.json()["error"]["code"] == "too_many_chats" and int(refused.headers["Retry-After"]) >= 1
    assert redis_client.dbsize() <= 16 * 4 + 16 * 2 + 5  # per chat: seq, outbox, batches, rate; per partition: 2


def test_one_api_key_is_held_to_rate_limit_per_key(env: dict[str, str], tmp_path: Path) -> None:
    env.update(INGEST_AUTH="on", API_KEY="leaked,other", RATE_LIMIT_PER_KEY="160")  # a share of 10 per partition
    api = start_api(env, tmp_path)
    with running(api):
        bodies = [{"user": f"u{i}", "message": "x", "ttl": 60} for i in range(1000)]
        replies = post_many(api.extra["url"], bodies, key="leaked")
        other = post_many(api.extra["url"], bodies[:16], key="other")
    codes = Counter(reply.status_code for reply in replies)
    assert 16 <= codes[200] <= 160 and codes[200] + codes[429] == 1000, codes
    refused = next(reply for reply in replies if reply.status_code == 429)
    assert refused.json()["error"]["code"] == "key_rate_limited" and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert all(reply.status_code == 200 for reply in other)  # another key (another client) is not held up
