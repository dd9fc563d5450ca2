"""GET /openapi.json: the API's OpenAPI 3.1 document, kept beside this module and read once."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Response

bp = Blueprint("openapi", __name__)

DOCUMENT = "openapi.json"


@cache
def document_bytes() -> bytes:
    """The document as shipped (package data), parsed once to fail loudly if it is not JSON."""
    raw = resources.files("datafy.http").joinpath(DOCUMENT).read_bytes()
    json.loads(raw)
    return raw


def document() -> dict[str, Any]:
    """The document as a dict, for tests and tools."""
    return json.loads(document_bytes())


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document of every route and reply; public, like /health."""
    return Response(document_bytes(), mimetype="application/json")
