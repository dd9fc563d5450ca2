"""GET /api/status: the system's state in one JSON (admin key), and GET /metrics for Prometheus."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from datafy import metrics, status
from datafy.errors import ApiError
from datafy.http import app as current
from datafy.http.auth import require_admin_key, require_key

bp = Blueprint("status", __name__)


@bp.get("/api/status")
def get_status() -> Response:
    """Counts, monitors, the receiver and the delivery figures; see README, "Monitoring"."""
    require_admin_key(current.settings().admin_api_keys)
    return jsonify(status.gather(current.store()))


@bp.get("/metrics")
def get_metrics() -> Response:
    """Prometheus exposition: every gunicorn worker's counters added up, and gauges read from Redis now."""
    settings = current.settings()
    require_metrics_key(settings.metrics_tokens + settings.admin_api_keys)
    return Response(metrics.exposition(current.store()), content_type=metrics.CONTENT_TYPE)


def require_metrics_key(keys: tuple[str, ...]) -> None:
    """The API's /metrics needs METRICS_TOKEN (or an admin key) as a Bearer token; off (403) without either."""
    if not keys:
        raise ApiError(403, "metrics_disabled", "/metrics is disabled: set METRICS_TOKEN (or ADMIN_API_KEY)")
    require_key(keys)
