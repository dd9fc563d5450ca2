"""The framework ceiling: the same Flask + Gunicorn stack parsing the same JSON, without touching Redis."""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify, request

app = Flask("ceiling")


@app.post("/api/message")
def append_message() -> Response:
    """Parse the body and answer like the real route would, minus Redis."""
    body = json.loads(request.get_data())
    return jsonify({"success": True, "user": str(body["user"]), "buffered": 1, "flush_at": "", "message": "ok"})
