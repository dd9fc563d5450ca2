"""The monitor's Prometheus endpoint: one per container, served by the supervising process on METRICS_PORT.

Its processes write their figures to PROMETHEUS_MULTIPROC_DIR; this endpoint adds them up and appends the
gauges read from Redis at scrape time. With METRICS_TOKEN set, a scrape must send it as a Bearer token.

It listens on HOST (0.0.0.0 in a container, so Prometheus can reach it) and may be open to anyone on that
network, so no client can make it hold resources: one thread reads every request head, without blocking, and
closes a connection that has not sent a whole head within READ_TIMEOUT_SECONDS (idle, or a byte at a time);
at most WAITING_CONNECTIONS wait for their head (past it, the oldest is closed); a few handler threads answer
the complete requests, one each (past them, a connection is closed unanswered).
"""

from __future__ import annotations

import contextlib
import hmac
import io
import logging
import selectors
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from datafy.config import Settings
from datafy.metrics import exposition
from datafy.store import Store

log = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 5.0  # to send a whole request head, from the moment it is accepted; also each reply write
WAITING_CONNECTIONS = 64  # accepted, head not complete yet; Prometheus sends its request at once
HANDLERS = 4  # requests answered at once: Prometheus scrapes one at a time
MAX_HEAD_BYTES = 16 * 1024
POLL_SECONDS = 0.25  # how soon stop() is seen


class Exporter:
    """A small HTTP server in a daemon thread: GET /metrics (and / for a human) with the container's figures."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        family = socket.AF_INET6 if ":" in settings.metrics_host else socket.AF_INET
        self.socket = socket.create_server((settings.metrics_host, settings.metrics_port), family=family, backlog=128)
        self.socket.setblocking(False)
        self.handler = self._handler()
        self.free_handlers = threading.BoundedSemaphore(HANDLERS)
        self.waiting: dict[socket.socket, tuple[float, Any, bytearray]] = {}  # oldest first: deadline, address, head
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self.socket.getsockname()[1]

    def start(self) -> Exporter:
        """Serve until stop()."""
        self.thread.start()
        log.info("metrics on http://%s:%d/metrics", self.settings.metrics_host, self.port)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self.socket.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            while not self.stopping.is_set():
                for key, _ in selector.select(POLL_SECONDS):
                    if key.fileobj is self.socket:
                        self._accept(selector)
                    else:
                        self._read(selector, key.fileobj)  # type: ignore[arg-type]
                now = time.monotonic()
                for connection, (deadline, _, _) in list(self.waiting.items()):
                    if deadline > now:
                        break  # the rest were accepted later
                    self._drop(selector, connection)
            for connection in list(self.waiting):
                self._drop(selector, connection)

    def _accept(self, selector: selectors.BaseSelector) -> None:
        while True:
            try:
                connection, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: wait a moment rather than spin on it
                log.warning("metrics: cannot accept a connection: %s", exc)
                self.stopping.wait(1.0)
                return
            if len(self.waiting) >= WAITING_CONNECTIONS:
                self._drop(selector, next(iter(self.waiting)))
            connection.setblocking(False)
            selector.register(connection, selectors.EVENT_READ)
            self.waiting[connection] = (time.monotonic() + READ_TIMEOUT_SECONDS, address, bytearray())

    def _read(self, selector: selectors.BaseSelector, connection: socket.socket) -> None:
        if connection not in self.waiting:  # closed by an earlier event of the same round
            return
        _, address, head = self.waiting[connection]
        try:
            data = connection.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        head += data
        if not data or len(head) > MAX_HEAD_BYTES:
            return self._drop(selector, connection)
        if b"\r\n\r\n" not in head and b"\n\n" not in head:
            return
        selector.unregister(connection)
        del self.waiting[connection]
        if not self.free_handlers.acquire(blocking=False):
            return _close(connection)
        # A daemon thread, as http.server's: a scrape in progress never holds up the process's exit.
        threading.Thread(target=self._answer, args=(connection, address, bytes(head)), name="metrics-scrape",
                         daemon=True).start()  # fmt: skip

    def _answer(self, connection: socket.socket, address: Any, head: bytes) -> None:
        try:
            self.handler(head, connection, address, self)
        except OSError:
            pass  # the client went away, or did not read its reply within the timeout
        except Exception:
            log.exception("metrics: a scrape failed")
        finally:
            _close(connection)
            self.free_handlers.release()

    def _drop(self, selector: selectors.BaseSelector, connection: socket.socket) -> None:
        selector.unregister(connection)
        del self.waiting[connection]
        _close(connection)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            timeout = READ_TIMEOUT_SECONDS  # the reply's writes; the head was read already

            def __init__(self, head: bytes, *args: Any) -> None:
                self.head = head
                super().__init__(*args)

            def setup(self) -> None:
                super().setup()
                self.rfile.close()
                self.rfile = io.BytesIO(self.head)

            def do_GET(self) -> None:  # the name http.server calls
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    return self._reply(404, b"not found; metrics are at /metrics\n", "text/plain")
                if not exporter.authorized(self.headers.get("Authorization", "")):
                    return self._reply(401, b"a valid METRICS_TOKEN is required (Authorization: Bearer)\n",
                                       "text/plain")  # fmt: skip
                self._reply(200, exposition.exposition(exporter.store), exposition.CONTENT_TYPE)

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


def _close(connection: socket.socket) -> None:
    """Close a client connection; shutdown() first, so the client sees it closed even while a process forked
    since holds a copy of the descriptor."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()
