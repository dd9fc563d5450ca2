"""The system's state in one JSON document: what GET /api/status returns and `python -m datafy status` prints.

Every figure is cheap: counting commands per partition (store.views), the monitors' own beats (store.monitors),
the receiver's breaker, and the last 16 per-minute delivery hashes (store.stats). Nothing scans.
"""

from __future__ import annotations

import time
from typing import Any

from datafy.model import iso_from_ms
from datafy.store import Counts, Store
from datafy.store.breaker import read_receiver
from datafy.store.stats import Figures

WINDOW_MINUTES = 15


def gather(store: Store, webhook_url: str = "", now_ms: int | None = None) -> dict[str, Any]:
    """The status document (see docs/monitoring.md) of the receiver at `webhook_url` (empty: the one the live
    monitors deliver to); raises StoreUnavailableError when Redis is down."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    counts = store.views.counts()
    monitors = store.monitors.alive()
    processes = [_process(record) for record in monitors]
    return {
        "success": True,
        "at": iso_from_ms(now_ms),
        "chats": _chats(counts),
        "batches": {
            "ready": counts.ready,
            "retrying": counts.retrying,
            "in_flight": sum(process["in_flight"] for process in processes),
        },
        "dead_letters": counts.dead_letters,
        "monitors": {"alive": len(processes), "processes": processes},
        "receiver": _receiver(store, webhook_url, monitors, now_ms),
        "deliveries": deliveries(store, now_ms),
    }


def gather_route(store: Store, route: str, webhook_url: str, now_ms: int | None = None) -> dict[str, Any]:
    """The status document as a route's admin key sees it: the route's own counts and receiver; the monitors as
    a count and the delivery figures as zeros (they are the whole deployment's, other clients' included)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    counts = store.views.route_counts(route)
    empty = _figures(Figures())
    return {
        "success": True,
        "at": iso_from_ms(now_ms),
        "route": route,
        "chats": _chats(counts),
        # Leased or waiting: the parked and retrying ones are counted apart.
        "batches": {
            "ready": counts.ready,
            "retrying": counts.retrying,
            "in_flight": max(0, counts.scheduled - counts.retrying),
        },
        "dead_letters": counts.dead_letters,
        "monitors": {"alive": len(store.monitors.alive()), "processes": []},
        "receiver": _receiver(store, webhook_url, [], now_ms),
        "deliveries": {"last_minute": empty, "last_15_minutes": empty, "per_minute": []},
    }


def deliveries(store: Store, now_ms: int) -> dict[str, Any]:
    """Deliveries and lag over the last 60 s and 15 min (sliding: the oldest minute counts for the share of it
    still inside the window), and per minute, oldest first, the current one last."""
    minute = now_ms // 60_000 * 60
    minutes = store.stats.minutes(minute)
    inside = 1.0 - (now_ms / 1000 - minute) / 60  # the share of the minute before each window still in it
    last_minute, last_15 = Figures(), Figures()
    last_minute.add(minutes[-1][1])
    last_minute.add(minutes[-2][1], inside)
    for _, figures in minutes[-WINDOW_MINUTES:]:
        last_15.add(figures)
    last_15.add(minutes[-WINDOW_MINUTES - 1][1], inside)
    per_minute = [{"minute": iso_from_ms(start * 1000), **_figures(f)} for start, f in minutes[-WINDOW_MINUTES:]]
    return {"last_minute": _figures(last_minute), "last_15_minutes": _figures(last_15), "per_minute": per_minute}


def _chats(counts: Counts) -> dict[str, int]:
    return {"pending": counts.pending_chats, "due_next_minute": counts.due_next_minute, "held": counts.held,
            "paused": counts.paused}  # fmt: skip


def _figures(figures: Figures) -> dict[str, Any]:
    return {
        "delivered": round(figures.delivered),
        "lag_p50_ms": figures.lag_ms(0.5),
        "lag_p99_ms": figures.lag_ms(0.99),
    }


def _process(record: dict[str, str]) -> dict[str, Any]:
    return {
        "id": record["id"],
        "host": record.get("host", ""),
        "pid": int(record.get("pid", 0)),
        "version": record.get("version", ""),
        "started_at": iso_from_ms(int(record["started_ms"])) if record.get("started_ms") else None,
        "last_beat_at": iso_from_ms(int(record["beat_ms"])) if record.get("beat_ms") else None,
        "in_flight": int(record.get("in_flight", 0)),
    }


def _receiver(store: Store, webhook_url: str, monitors: list[dict[str, str]], now_ms: int) -> dict[str, Any]:
    """The breaker of `webhook_url` when given, else of the URL the live monitors deliver to."""
    key = store.keys.receiver(webhook_url) if webhook_url else next(
        (record["receiver"] for record in monitors if record.get("receiver")), None
    )  # fmt: skip
    view = read_receiver(store.connection, key) if key else None
    if view is None:
        return {"state": "closed", "failures": 0, "open_since": None, "paused_until": None}
    return {
        "state": "open" if view.open_since_ms else "closed",
        "failures": view.failures,
        "open_since": iso_from_ms(view.open_since_ms) if view.open_since_ms else None,
        "paused_until": iso_from_ms(view.paused_until_ms) if view.paused_until_ms > now_ms else None,
    }


def render_text(status: dict[str, Any]) -> str:
    """The status for a terminal: a few aligned lines."""
    chats, batches, receiver, monitors = status["chats"], status["batches"], status["receiver"], status["monitors"]
    lines = [
        f"redis-datafy status at {status['at']}",
        f"  chats        {chats['pending']} pending, {chats['due_next_minute']} due in the next minute",
        f"  batches      {batches['ready']} ready, {batches['retrying']} retrying, {batches['in_flight']} in flight",
        f"  dead letters {status['dead_letters']}",
        f"  receiver     {receiver['state']}, {receiver['failures']} failure(s) in a row"
        + (f", open since {receiver['open_since']}" if receiver["open_since"] else "")
        + (f", paused until {receiver['paused_until']}" if receiver["paused_until"] else ""),
        f"  monitors     {monitors['alive']} alive" + ("" if monitors["alive"] else "  <- nothing delivers batches!"),
    ]
    for p in monitors["processes"]:
        lines.append(f"    {p['id']:<28} v{p['version']} pid {p['pid']} since {p['started_at']}, "
                     f"{p['in_flight']} in flight, beat {p['last_beat_at']}")  # fmt: skip
    lines.append("  deliveries   delivered   lag p50   lag p99")
    d = status["deliveries"]
    for label, figures in (("last minute", d["last_minute"]), ("last 15 min", d["last_15_minutes"])):
        lines.append(f"    {label:<12} {figures['delivered']:>9}  {_ms(figures['lag_p50_ms'])}  "
                     f"{_ms(figures['lag_p99_ms'])}")  # fmt: skip
    lines.append("  per minute   " + " ".join(str(m["delivered"]) for m in d["per_minute"]) + "  (oldest first)")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return f"{'-':>8}" if value is None else f"{value:>6.0f}ms"
