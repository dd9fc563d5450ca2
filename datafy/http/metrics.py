"""GET /metrics: the API's figures for Prometheus (METRICS_TOKEN or an admin key)."""

from __future__ import annotations

from flask import Blueprint, Response

from datafy.errors import ApiError
from datafy.http import context
from datafy.http.auth import require_key
from datafy.metrics import exposition

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def get_metrics() -> Response:
    """Prometheus exposition: every gunicorn worker's counters added up, and gauges read from Redis now."""
    settings = context.settings()
    require_metrics_key(settings.metrics_tokens + settings.admin_api_keys)
    return Response(exposition.exposition(context.store()), content_type=exposition.CONTENT_TYPE)


def require_metrics_key(keys: tuple[str, ...]) -> None:
    """The API's /metrics needs METRICS_TOKEN (or an admin key) as a Bearer token; off (403) without either."""
    if not keys:
        raise ApiError(403, "metrics_disabled", "/metrics is disabled: set METRICS_TOKEN (or ADMIN_API_KEY)")
    require_key(keys)
