"""The checks `./dev images` runs on the started stack, one printed line each, and its webhook receiver."""

from __future__ import annotations

import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from collections.abc import Sequence

    from devtools.images import Image, Stack

GRACE = 30  # docker-compose.yml's stop_grace_period
HEALTH_WAIT = 90  # the longest start period (Redis: 30 s) and a few intervals
APP_UID = 10001  # Dockerfile and Dockerfile.monitor: useradd --uid 10001 datafy
BURST_USERS = 200
BURST_MESSAGES = 3
BURST_SENDERS = 16
DELIVERY_WAIT = 60
NEVER_SHIPPED = ("devtools", "tests", "bench", "docs", ".env", ".git", ".run", ".venv")


class CheckError(Exception):
    """A check failed; the message is its report line (and maybe the container's last log lines)."""


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 200 to every POST and keeps the batches in arrival order."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.batches.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per check is the output; batches are counted, not printed

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/batches"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self) -> list[dict[str, Any]]:
        """The batches so far, in arrival order."""
        with self.lock:
            return list(self.batches)

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


def run_checks(stack: Stack, images: Sequence[Image], receiver: Receiver) -> int:
    """Start the images one by one (Redis first) and run every check, printing a line for each; 0 when all pass."""
    for image in images:
        stack.start(image)
        report(wait_healthy(stack, image.service))
        report(check_users(stack, image.service))
        if image.service != "redis":
            report(check_contents(stack, image.service))
    report(check_burst(stack, receiver))
    report(check_restart(stack))
    for image in reversed(images):  # Redis last: the others may write to it while they stop
        report(check_stop(stack, image.service))
    return 0


def report(line: str) -> None:
    """Print the line of a check that passed."""
    print(f"ok   {line}", flush=True)


def failed(stack: Stack, service: str, line: str) -> CheckError:
    """A CheckError with the container's last log lines, to see why."""
    logs = stack.engine.logs(stack.name(service))
    return CheckError(f"{line}\n--- last lines of {service}'s log:\n{logs}")


def wait_healthy(stack: Stack, service: str) -> str:
    """The image's own HEALTHCHECK passes (run by hand on podman, which schedules it with systemd)."""
    engine, name = stack.engine, stack.name(service)
    started = time.monotonic()
    while True:
        if not engine.running(name):
            raise failed(stack, service, f"health {service}: the container stopped (exit {engine.exit_code(name)})")
        healthy, said = engine.health(name)
        waited = time.monotonic() - started
        if healthy:
            return f"health {service}: HEALTHCHECK passes ({waited:.1f}s after start)"
        if waited > HEALTH_WAIT:
            raise failed(stack, service, f"health {service}: HEALTHCHECK still fails after {HEALTH_WAIT}s: {said}")
        time.sleep(1)


def check_users(stack: Stack, service: str) -> str:
    """Every process of the container runs as its unprivileged user: datafy (10001), or Redis's `redis`."""
    engine, name = stack.engine, stack.name(service)
    # $$ is this shell; it and its cat are ours, not the container's.
    ours, _, statuses = engine.exec(name, "sh", "-c", "echo $$; cat /proc/[0-9]*/status 2>/dev/null").partition("\n")
    users = {
        int(f[2]): f[0]
        for f in (row.split(":") for row in engine.exec(name, "cat", "/etc/passwd").splitlines())
        if len(f) > 2
    }
    processes = [p for p in parse_statuses(statuses) if ours.strip() not in (p["Pid"], p["PPid"])]
    uids = {int(uid) for process in processes for uid in process["Uid"].split()}
    described = ", ".join(f"{uid} ({users.get(uid, '?')})" for uid in sorted(uids))
    names = ", ".join(sorted({process["Name"] for process in processes}))
    line = f"user {service}: {len(processes)} process(es) ({names}), uid {described}"
    wanted = {APP_UID} if service != "redis" else {uid for uid, user in users.items() if user == "redis" and uid != 0}
    if not uids or not uids <= wanted:
        raise failed(stack, service, f"{line}; expected only {'redis' if service == 'redis' else APP_UID}")
    return line


def parse_statuses(text: str) -> list[dict[str, str]]:
    """/proc/<pid>/status files one after another -> one dict per process (each file begins with Name:)."""
    processes: list[dict[str, str]] = []
    for row in text.splitlines():
        key, _, value = row.partition(":")
        if key == "Name":
            processes.append({})
        if processes:
            processes[-1][key] = value.strip()
    return processes


def check_contents(stack: Stack, service: str) -> str:
    """/app holds what the Dockerfile copies, never tooling, tests or secrets."""
    listing = sorted(stack.engine.exec(stack.name(service), "ls", "-A", "/app").split())
    shipped = [entry for entry in listing if entry in NEVER_SHIPPED]
    line = f"contents {service}: /app holds {' '.join(listing)}"
    if not listing or shipped:
        raise failed(stack, service, f"{line}; {' '.join(shipped) or 'nothing'} should not be there")
    return line


def post_message(stack: Stack, session: requests.Session, user: str, message: str, ttl: float) -> None:
    """POST /api/message with the API key; CheckError unless it answered 200 and success."""
    body = {"user": user, "message": message, "ttl": ttl}
    reply = session.post(stack.url("/api/message"), json=body, headers={"X-API-Key": stack.api_key}, timeout=30)
    if reply.status_code != 200 or not reply.json().get("success"):
        raise CheckError(f"POST /api/message answered {reply.status_code}: {reply.text[:200]}")


def check_burst(stack: Stack, receiver: Receiver) -> str:
    """Many users send a few messages each; every message reaches the receiver once, in each user's order."""
    run = secrets.token_hex(3)
    expected = {f"burst-{run}-{u}": [f"{u}.{m}" for m in range(BURST_MESSAGES)] for u in range(BURST_USERS)}
    local = threading.local()

    def send(user: str) -> None:
        local.session = getattr(local, "session", None) or requests.Session()
        for message in expected[user]:
            post_message(stack, local.session, user, message, ttl=2)

    started = time.monotonic()
    with ThreadPoolExecutor(BURST_SENDERS) as senders:
        list(senders.map(send, expected))
    sent = time.monotonic() - started
    total = BURST_USERS * BURST_MESSAGES
    while True:
        delivered: dict[str, list[Any]] = {user: [] for user in expected}
        batch_ids, count = set(), 0
        for batch in receiver.received():
            if batch.get("user") in delivered and batch["batch_id"] not in batch_ids:  # a redelivery repeats its id
                batch_ids.add(batch["batch_id"])
                delivered[batch["user"]] += batch["messages"]
                count += len(batch["messages"])
        if count >= total or time.monotonic() - started > DELIVERY_WAIT:
            break
        time.sleep(0.2)
    wrong = [user for user in expected if delivered[user] != expected[user]]
    line = (
        f"burst: {BURST_USERS} users x {BURST_MESSAGES} messages: {count}/{total} delivered in {len(batch_ids)} batches"
    )
    if wrong:
        sample = wrong[0]
        raise failed(
            stack,
            "monitor",
            f"{line}; {len(wrong)} users wrong, e.g. {sample}: {delivered[sample]} != {expected[sample]}",
        )
    took = time.monotonic() - started
    return f"{line}, each user's in order (sent in {sent:.1f}s, all delivered {took:.1f}s after the first)"


def check_restart(stack: Stack) -> str:
    """A pending chat (long ttl) is still there after the Redis container restarts: the volume and the AOF work."""
    user, message = f"restart-{secrets.token_hex(3)}", "kept across a Redis restart"
    post_message(stack, stack.session, user, message, ttl=3600)
    started = time.monotonic()
    stack.engine.restart(stack.name("redis"), GRACE)
    wait_healthy(stack, "redis")
    while True:
        try:
            reply = stack.session.get(
                stack.url(f"/api/chats/{user}"), headers={"X-API-Key": stack.admin_key}, timeout=10
            )
        except requests.RequestException as exc:
            reply, error = None, str(exc)
        if reply is not None and reply.status_code == 200:
            break
        if reply is not None:
            error = f"{reply.status_code} {reply.text[:200]}"
        if (reply is not None and reply.status_code == 404) or time.monotonic() - started > HEALTH_WAIT:
            raise failed(stack, "redis", f"restart: GET /api/chats/{user} after a Redis restart answered {error}")
        time.sleep(0.5)
    messages = reply.json().get("messages")
    if messages != [message]:
        raise failed(stack, "redis", f"restart: the pending chat came back as {messages!r}")
    took = time.monotonic() - started
    return f"restart: a pending chat survived a Redis restart (GET /api/chats/<user> answered {took:.1f}s later)"


def check_stop(stack: Stack, service: str) -> str:
    """`stop` (SIGTERM, SIGKILL after GRACE) ends the container by itself within the grace period, exit 0."""
    engine, name = stack.engine, stack.name(service)
    started = time.monotonic()
    engine.stop(name, GRACE)
    took = time.monotonic() - started
    code = engine.exit_code(name)
    line = f"stop {service}: exit {code} after {took:.1f}s (grace {GRACE}s)"
    if code != 0 or took >= GRACE:
        raise failed(stack, service, line)
    return line
