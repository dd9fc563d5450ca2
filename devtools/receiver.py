"""A real HTTP webhook receiver: prints batches for `./dev run`, records them for the tests."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """What the receiver answers: a status, headers, and an optional stall before answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    """One POST as it arrived."""

    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    raw: bytes = b""  # the body's exact bytes, for signature checks
    path: str = ""  # the request path (several routes may share one receiver, each on its own path)


Behaviour = Callable[[dict[str, Any], int], Reply]  # (batch, nth POST of this batch_id) -> Reply


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up (a killed monitor) is routine here, not a traceback."""
        log.debug("connection from %s ended abruptly", client_address)


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that answers every POST according to `behaviour`."""

    def __init__(
        self, behaviour: Behaviour | None = None, port: int = 0, on_batch: Callable[[dict], None] | None = None
    ):
        self.behaviour: Behaviour = behaviour or (lambda batch, nth: Reply())
        self.on_batch = on_batch
        self.received: list[Received] = []
        self.delivered: list[dict[str, Any]] = []  # bodies answered with 2xx
        self._seen: dict[str, int] = {}
        self._open: dict[str, int] = {}  # POSTs of each batch not yet answered (or given up by the client)
        self.overlapping: list[str] = []  # batch ids POSTed while another POST of theirs was still open
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True)

    @property
    def url(self) -> str:
        """The URL to set as WEBHOOK_URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/webhook"

    def start(self) -> Receiver:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float) -> bool:
        """Poll until predicate(self) is true or timeout passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def _record(self, body: dict[str, Any], headers: dict[str, str], raw: bytes, path: str = "") -> Reply:
        with self._lock:
            self.received.append(Received(body, headers, time.time(), raw, path))
            batch_id = str(body.get("batch_id"))
            self._seen[batch_id] = nth = self._seen.get(batch_id, 0) + 1
            if self._open.get(batch_id):
                self.overlapping.append(batch_id)
            self._open[batch_id] = self._open.get(batch_id, 0) + 1
        return self.behaviour(body, nth)

    def _closed(self, body: dict[str, Any]) -> None:
        with self._lock:
            self._open[str(body.get("batch_id"))] -= 1

    def _delivered(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.delivered.append(body)
        if self.on_batch:
            self.on_batch(body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                body = json.loads(raw or b"{}")
                reply = receiver._record(body, dict(self.headers), raw, self.path)
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                    payload = b'{"ok":true}'
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    return  # the client gave up (timeout): it was not delivered
                finally:
                    receiver._closed(body)
                if 200 <= reply.status < 300:
                    receiver._delivered(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
