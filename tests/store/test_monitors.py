"""The monitor processes alive (datafy/store/monitors.py): beats, the shared order, leaving."""

from __future__ import annotations

from datafy.store import Store


def test_monitors_beat_share_and_leave(store: Store) -> None:
    assert store.monitors.beat("b", {"host": "h", "pid": 2}) == ["b"]
    assert store.monitors.beat("a", {"host": "h", "pid": 1}) == ["a", "b"]
    alive = store.monitors.alive()
    assert [(m["id"], m["pid"]) for m in alive] == [("a", "1"), ("b", "2")] and int(alive[0]["beat_ms"]) > 0
    store.monitors.leave("a")
    assert [m["id"] for m in store.monitors.alive()] == ["b"]
