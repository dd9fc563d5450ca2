"""Gunicorn's logs without secrets: gateways put the ingest key (?key=) and Meta's verify token in URLs."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from datafy.log import SECRET_FILTER, redact_query


class RedactingLogger(Logger):
    """Gunicorn's logger, with the request line and query string of each access line redacted, and API keys
    masked in its error log (the request lines and URIs its `handle_error` logs)."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.error_log.addFilter(SECRET_FILTER)  # in the master too, before a worker configures logging

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        """The access-log fields, secrets masked."""
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = redact_query(atoms["r"])
        atoms["q"] = redact_query("?" + (atoms["q"] or ""))[1:]
        for header in ("{x-api-key}i", "{authorization}i"):
            if header in atoms:
                atoms[header] = "***"
        return atoms
