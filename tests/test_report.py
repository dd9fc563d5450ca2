"""The status document (datafy/report.py): counts, monitors, the receiver and the delivery figures, as JSON
(GET /api/status) and as text (python -m datafy status), over the real Redis (real processes: tests/e2e)."""

from __future__ import annotations

import time

from flask.testing import FlaskClient

from datafy.report import gather, render_text
from datafy.store import Store

ADMIN = {"Authorization": "Bearer admin-secret"}


def test_status_counts_chats_monitors_and_deliveries(client: FlaskClient, store: Store) -> None:
    for user, ttl in (("a", 30), ("b", 600)):
        assert client.post("/api/message", json={"user": user, "message": "oi", "ttl": ttl}).status_code == 200
    store.monitors.beat("host-1", {"host": "host", "pid": 11, "version": "1.0.0", "started_ms": 1_000,
                                   "in_flight": 3})  # fmt: skip
    now_ms = int(time.time() * 1000)
    store.stats.record(now_ms // 60_000 * 60, 3, [40, 40, 900])

    body = client.get("/api/status", headers=ADMIN).get_json()
    assert list(body) == ["success", "at", "chats", "batches", "dead_letters", "monitors", "receiver", "deliveries"]
    assert body["chats"] == {"pending": 2, "due_next_minute": 1, "held": 0, "paused": 0}
    assert body["batches"] == {"ready": 0, "retrying": 0, "in_flight": 3}
    assert body["dead_letters"] == 0
    [process] = body["monitors"]["processes"]
    assert body["monitors"]["alive"] == 1
    assert process["id"] == "host-1" and process["pid"] == 11 and process["in_flight"] == 3
    assert process["started_at"] == "1970-01-01T00:00:01.000Z" and process["last_beat_at"].endswith("Z")
    assert body["receiver"] == {"state": "closed", "failures": 0, "open_since": None, "paused_until": None}
    last = body["deliveries"]["last_minute"]
    assert last["delivered"] == 3 and last["lag_p50_ms"] == 43.8 and 500 < last["lag_p99_ms"] <= 1000
    assert body["deliveries"]["last_15_minutes"] == last
    per_minute = body["deliveries"]["per_minute"]
    assert len(per_minute) == 15 and per_minute[-1]["delivered"] == 3
    assert per_minute[0]["minute"] < per_minute[-1]["minute"] and per_minute[0]["lag_p50_ms"] is None


def test_the_minute_before_counts_for_its_share_of_the_last_60_seconds(store: Store) -> None:
    minute = 1_790_000_040 // 60 * 60
    store.stats.record(minute - 60, 10, [100] * 10)
    store.stats.record(minute, 2, [100] * 2)
    quarter_in = (minute + 15) * 1000  # 45 s of the minute before are still within the last 60 s
    deliveries = gather(store, now_ms=quarter_in)["deliveries"]
    assert deliveries["last_minute"]["delivered"] == 2 + round(10 * 0.75)
    assert deliveries["last_15_minutes"]["delivered"] == 12
    assert [m["delivered"] for m in deliveries["per_minute"][-2:]] == [10, 2]


def test_the_receiver_state_follows_the_breaker(store: Store) -> None:
    for _ in range(5):
        store.breaker.record(0, 1)
    state = store.breaker.record(0, 1, pause_seconds=30)  # a Retry-After: open at once, paused
    status = gather(store, store.settings.webhook_url, state.now_ms)
    assert status["receiver"]["state"] == "open" and status["receiver"]["failures"] == 6
    assert status["receiver"]["open_since"] and status["receiver"]["paused_until"] > status["at"]
    text = render_text(status)
    assert "receiver     open, 6 failure(s) in a row" in text and "0 alive  <- nothing delivers batches!" in text
