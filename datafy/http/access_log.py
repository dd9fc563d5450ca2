"""Gunicorn's access log without secrets: gateways put the ingest key (?key=) and Meta's verify token in URLs."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

# A secret query value: up to the next "&", "#" or space (the request line ends with " HTTP/1.1").
_SECRET_PARAM = re.compile(r"(?i)(?<=[?&])(key|hub\.verify_token|hub%2Everify_token)=[^&#\s]*")


def redact_query(text: str) -> str:
    """`text` (a request line or query string) with the values of key= and hub.verify_token= masked."""
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)


class RedactingLogger(Logger):
    """Gunicorn's logger, with the request line and query string of each access line redacted."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        """The access-log fields, secrets masked."""
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = redact_query(atoms["r"])
        atoms["q"] = redact_query("?" + (atoms["q"] or ""))[1:]
        for header in ("{x-api-key}i", "{authorization}i"):
            if header in atoms:
                atoms[header] = "***"
        return atoms
