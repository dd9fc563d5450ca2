"""Logging: one line per event on stdout, as text or JSON, shared by the API, Gunicorn and the monitor."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from urllib.parse import unquote_plus, urlsplit

# A query parameter (up to the next "&", "#" or space: a request line ends with " HTTP/1.1"), whose name is
# compared decoded, as Werkzeug decodes it: ?%6Bey= opens the ingest routes as ?key= does.
_QUERY_PARAM = re.compile(r"(?<=[?&])([^=&#\s]+)=[^&#\s]*")
SECRET_PARAMS = frozenset({"key", "hub.verify_token"})  # the ingest key; Meta's verify token
# A header line gunicorn quotes whole when it cannot parse it ("X-API-Key abc" without its colon).
_SECRET_HEADER = re.compile(r"(?i)\b(x-api-key|authorization)\b([\s:]*)[^'\"\r\n]+")


def redact_query(text: str) -> str:
    """`text` (a request line, a URI or a query string) with the values of key= and hub.verify_token= masked."""

    def mask(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{name}=***" if unquote_plus(name).lower() in SECRET_PARAMS else match.group(0)

    return _QUERY_PARAM.sub(mask, text)


def redact_secrets(text: str) -> str:
    """`text` with API keys masked: in URLs (?key=) and in header lines (X-API-Key, Authorization)."""
    return _SECRET_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}***", redact_query(text))


class SecretFilter(logging.Filter):
    """Masks API keys in Gunicorn's error log: its `handle_error` logs the request line of a request it refuses
    and the URI of a request whose exception escaped the app, ?key= included."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit: logging reports it when it formats
            return True
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:  # an exception's text may quote the URI too
            record.exc_text = redact_secrets(logging.Formatter().formatException(record.exc_info))
        return True


SECRET_FILTER = SecretFilter()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Control characters (line breaks above all) in a value a client chose, a user id say, would let it forge
# log lines: the text format shows them escaped. Tracebacks are formatted apart and keep their lines.
_ESCAPES = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


class TextFormatter(logging.Formatter):
    """One line per event, whatever the values in it hold."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802  (logging's name)
        record.message = record.message.translate(_ESCAPES)
        return super().formatMessage(record)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send our logs and Gunicorn's to stdout in one format; idempotent."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("gunicorn.error", "gunicorn.access"):
        gunicorn_logger = logging.getLogger(name)
        gunicorn_logger.handlers[:] = []
        gunicorn_logger.propagate = True
    logging.getLogger("gunicorn.error").addFilter(SECRET_FILTER)  # the access log masks its own fields
    # urllib3 logs every retry and pool event at INFO/DEBUG; our own lines already say what matters.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def redact_url(url: str) -> str:
    """Scheme, host and port only: webhook URLs carry secrets in credentials, paths (n8n ids) and queries."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # drop user:password, keep host[:port] as written
    return f"{parts.scheme}://{host}/..."
