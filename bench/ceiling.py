"""Framework ceilings: the same Flask + Gunicorn stack parsing the same JSON, without our logic.

`app`: parse and answer, no Redis (the framework's limit). `app_with_redis_round_trip`: the same plus one
Redis PING, the least any design must add to store a message before answering (the I/O floor). `bare_wsgi`:
the same parse and answer as a plain WSGI function, no Flask (gunicorn's own limit; the API's fast path,
datafy/http/fastpath.py, answers messages this way).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import redis
from flask import Flask, Response, jsonify, request


def _make(with_redis: bool) -> Flask:
    app = Flask("ceiling")
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0")) if with_redis else None

    @app.post("/api/message")
    def append_message() -> Response:
        """Parse the body and answer like the real route would, minus our work."""
        body = json.loads(request.get_data())
        if client is not None:
            client.ping()
        return jsonify({"success": True, "user": str(body["user"]), "buffered": 1, "flush_at": "", "message": "ok"})

    return app


app = _make(with_redis=False)
app_with_redis_round_trip = _make(with_redis=True)


def bare_wsgi(environ: dict, start_response: Callable) -> list[bytes]:
    """The ceiling's work without Flask: read, parse, answer."""
    if environ["REQUEST_METHOD"] != "POST":  # the benchmarks' readiness probe
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]
    body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
    reply = {"success": True, "user": str(body["user"]), "buffered": 1, "flush_at": "", "message": "ok"}
    out = (json.dumps(reply, separators=(",", ":")) + "\n").encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
