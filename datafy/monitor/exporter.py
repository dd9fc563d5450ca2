"""The monitor's Prometheus endpoint: one per container, served by the supervising process on METRICS_PORT.

Its processes write their figures to PROMETHEUS_MULTIPROC_DIR; this endpoint adds them up and appends the
gauges read from Redis at scrape time. With METRICS_TOKEN set, a scrape must send it as a Bearer token.
"""

from __future__ import annotations

import hmac
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from datafy import metrics
from datafy.config import Settings
from datafy.store import Store

log = logging.getLogger(__name__)


class Exporter:
    """A small HTTP server in a daemon thread: GET /metrics (and / for a human) with the container's figures."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self.server = ThreadingHTTPServer((settings.metrics_host, settings.metrics_port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self.server.server_address[1]

    def start(self) -> Exporter:
        """Serve until stop()."""
        self.thread.start()
        log.info("metrics on http://%s:%d/metrics", self.settings.metrics_host, self.port)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    return self._reply(404, b"not found; metrics are at /metrics\n", "text/plain")
                if not exporter.authorized(self.headers.get("Authorization", "")):
                    return self._reply(401, b"a valid METRICS_TOKEN is required (Authorization: Bearer)\n",
                                       "text/plain")  # fmt: skip
                self._reply(200, metrics.exposition(exporter.store), metrics.CONTENT_TYPE)

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # scrapes are not news
                pass

        return Handler

    def authorized(self, header: str) -> bool:
        """True without METRICS_TOKEN, else when the header is `Bearer <one of the tokens>` (constant time)."""
        tokens = self.settings.metrics_tokens
        if not tokens:
            return True
        presented = header[7:].strip(" \t").encode() if header[:7].lower() == "bearer " else b""
        found = False
        for token in tokens:
            found |= hmac.compare_digest(presented, token.encode())
        return found
