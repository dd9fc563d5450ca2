"""Check the n8n answering recipe (docs/answering.md) in a running n8n with real redis-datafy batches. Not run in CI.

Needs an n8n with workflow-answering.json imported and active (Webhook, respond at once → a 4 s Wait for the AI
→ GET links.self → IF newer → POST links.unanswered, else a Set standing for the reply → POST links.answered)
and a public-API key (README.md beside this file). Starts its own Redis, API (PUBLIC_URL = its address,
INGEST_AUTH=off) and monitor on loopback ports:

  N8N_API_KEY=... .venv/bin/python -m devtools.n8n.answering_check [--n8n http://127.0.0.1:5678] [--logs DIR]

Scenario A (the guard, then unanswered): "oi" and "quero o preço" (ttl 1 s); 2 s after that batch reached n8n,
"do modelo azul" (ttl 1 s), which leaves alone before the guard runs: nothing is lost, the carried batch comes
after it. A2: the same, "do modelo azul" with ttl 3 s (still buffered when the guard runs): one batch of three.
Scenario B: as A, with "await_answer": true. Prints one line per execution, the
monitor's deliveries and the API's verdicts, and one line per check; exit 1 on a failure.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from devtools.processes import Proc, running, start_api, start_monitor
from devtools.redis_server import RedisServer, free_port

WORKFLOW = "DatafyAnswer0001"
WEBHOOK_PATH = "datafy-answer"
FIRST, SECOND, LATE = "oi", "quero o preço", "do modelo azul"
LATE_AFTER_SECONDS = 2.0  # after the first batch was delivered: while the workflow's AI is still thinking
QUIET_SECONDS = 8.0  # no new delivery for this long (Wait 4 s + ttl 1 s + margin): the chat has settled
WAIT_SECONDS = 60


@dataclass(frozen=True)
class Execution:
    """One n8n execution of the answering workflow: the batch it got, the guard's reply and its verdict."""

    id: str
    status: str
    user: str
    batch_id: str
    messages: list[Any]
    carried_over: list[str] | None
    flush_reason: str
    received_ms: int  # when the Webhook node ran (n8n's clock, epoch ms)
    guard: dict[str, Any]
    verdict: str | None  # "answered" | "unanswered" | None (not reached)
    verdict_status: int | None
    verdict_ms: int | None


class N8n:
    """n8n's public API (X-N8N-API-KEY)."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["X-N8N-API-KEY"] = api_key

    def get(self, path: str, **params: Any) -> Any:
        """GET one public-API path; raise on an error status."""
        response = self.session.get(f"{self.url}/api/v1{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def executions(self, user: str) -> list[Execution]:
        """The finished executions of the answering workflow for `user`, oldest first."""
        found = []
        for raw in self.get("/executions", workflowId=WORKFLOW, includeData="true", limit=250)["data"]:
            if raw["status"] in ("new", "running", "waiting"):
                continue
            execution = _execution_of(raw)
            if execution and execution.user == user:
                found.append(execution)
        return sorted(found, key=lambda e: int(e.id))


def _output(run_data: dict[str, Any], node: str) -> tuple[dict[str, Any], int | None]:
    """The first item a node put out, and when it started; ({}, None) when it did not run."""
    try:
        run = run_data[node][0]
        return run["data"]["main"][0][0]["json"], run.get("startTime")
    except (KeyError, IndexError, TypeError):
        return {}, None


def _execution_of(raw: dict[str, Any]) -> Execution | None:
    run_data = ((raw.get("data") or {}).get("resultData") or {}).get("runData") or {}
    request, received_ms = _output(run_data, "Webhook")
    body = request.get("body") or {}
    if not body or received_ms is None:
        return None
    guard, _ = _output(run_data, "Answer guard")
    verdict, reply, verdict_ms = None, {}, None
    for node in ("Unanswered", "Answered"):
        reply, verdict_ms = _output(run_data, node)
        if verdict_ms is not None:
            verdict = node.lower()
            break
    return Execution(
        id=str(raw["id"]), status=raw["status"], user=str(body.get("user")), batch_id=str(body.get("batch_id")),
        messages=body.get("messages") or [], carried_over=body.get("carried_over"),
        flush_reason=str(body.get("flush_reason")), received_ms=received_ms,
        guard={k: guard.get(k) for k in ("newer", "newer_messages", "state")} if guard else {},
        verdict=verdict, verdict_status=reply.get("statusCode"), verdict_ms=verdict_ms,
    )  # fmt: skip


class Check:
    """Counts failures and prints one line per check."""

    def __init__(self) -> None:
        self.failures = 0

    def __call__(self, ok: bool, what: str) -> None:
        self.failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)


def lines_of(proc: Proc, *needles: str) -> list[str]:
    """The process's log lines holding every one of `needles`."""
    return [line for line in proc.log().splitlines() if all(n in line for n in needles)]


def wait_until(condition: Any, what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll `condition` until it returns something truthy; raise after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def settle(n8n: N8n, monitor: Proc, user: str) -> list[Execution]:
    """The user's executions once every delivered batch has a finished execution and nothing moved for a while."""
    last_change, seen = time.monotonic(), (-1, -1)
    deadline = last_change + WAIT_SECONDS
    while time.monotonic() < deadline:
        delivered, executions = len(lines_of(monitor, "delivered", f"user={user} ")), n8n.executions(user)
        if (delivered, len(executions)) != seen:
            last_change, seen = time.monotonic(), (delivered, len(executions))
        elif delivered == len(executions) and time.monotonic() - last_change >= QUIET_SECONDS:
            return executions
        time.sleep(0.5)
    return n8n.executions(user)


def print_executions(executions: list[Execution], start_ms: int) -> None:
    """One line per execution; times in seconds since the scenario's first message."""
    for e in executions:
        verdict_at = f"{(e.verdict_ms - start_ms) / 1000:.1f}s" if e.verdict_ms else "-"
        print(f"     execution {e.id} {e.status} batch_id={e.batch_id} messages={e.messages} "
              f"carried_over={e.carried_over} flush_reason={e.flush_reason} "
              f"received={(e.received_ms - start_ms) / 1000:.1f}s guard={e.guard} "
              f"verdict={e.verdict} status={e.verdict_status} at={verdict_at}", flush=True)  # fmt: skip


def run_scenario(
    n8n: N8n, api: Proc, monitor: Proc, user: str, await_answer: bool, late_ttl: float = 1
) -> list[Execution]:
    """Two messages, then the late one while the workflow thinks; the executions once the chat settled."""
    url = api.extra["url"]
    extra = {"await_answer": True} if await_answer else {}

    def send(text: str, ttl: float = 1) -> None:
        body = {"user": user, "message": text, "ttl": ttl, **extra}
        requests.post(f"{url}/api/message", json=body, timeout=10).raise_for_status()

    start_ms = int(time.time() * 1000)
    send(FIRST)
    send(SECOND)
    wait_until(lambda: lines_of(monitor, "delivered", f"user={user} "), "the first delivery")
    time.sleep(LATE_AFTER_SECONDS)
    send(LATE, late_ttl)
    executions = settle(n8n, monitor, user)
    print_executions(executions, start_ms)
    for line in lines_of(monitor, "delivered", f"user={user} ") + lines_of(api, f"user={user} ", "answered"):
        print(f"     log: {line}")
    return executions


def _verdict_is(e: Execution | None, newer: bool, verdict: str) -> bool:
    return e is not None and e.guard.get("newer") is newer and e.verdict == verdict and e.verdict_status == 200


def check_scenario_a(check: Check, got: list[Execution], name: str = "A") -> None:
    """The guard sees the late message; unanswered folds the first batch into the next; that one is answered."""
    first = got[0] if got else None
    check(first is not None and first.messages == [FIRST, SECOND], f"{name}: the first batch holds the first two")
    check(_verdict_is(first, True, "unanswered"), f"{name}: its execution sees newer=true and POSTs unanswered (200)")
    carrier = [e for e in got[1:] if first and e.carried_over == [first.batch_id]]
    folded = len(carrier) == 1 and carrier[0].messages == [FIRST, SECOND, LATE]
    check(folded, f"{name}: the next batch holds all three messages, carried_over=[first batch_id]")
    last = got[-1] if got else None
    check(len(got) == 2 and _verdict_is(last, False, "answered"),
          f"{name}: two executions; the second sees newer=false and POSTs answered (200)")  # fmt: skip


def check_scenario_a_without_hold(check: Check, got: list[Execution]) -> None:
    """Without await_answer the late fragment (ttl 1 s, the AI thinks 4 s) leaves on its own before the guard
    runs (docs/answering.md says so, and recommends await_answer): nothing is lost, the carried batch comes
    after it, naming the first in carried_over."""
    first = got[0] if got else None
    check(_verdict_is(first, True, "unanswered"), "A: the first execution sees newer=true and POSTs unanswered (200)")
    seen = [m for e in got[1:] for m in e.messages]
    check(sorted(seen) == sorted([FIRST, SECOND, LATE]), "A: every message reaches n8n after it, each once")
    carrier = [e for e in got[1:] if first and e.carried_over == [first.batch_id]]
    check(len(carrier) == 1 and carrier[0].messages[:2] == [FIRST, SECOND], "A: the carried batch names the first")


def check_scenario_b(check: Check, got: list[Execution]) -> None:
    """As A, and the second batch reaches n8n only after the first execution's verdict."""
    first = got[0] if got else None
    ok = len(got) == 2 and first is not None and first.messages == [FIRST, SECOND]
    check(ok and _verdict_is(first, True, "unanswered"), "B: two executions; the first sees newer=true and POSTs "
          "unanswered (200)")  # fmt: skip
    if len(got) != 2:
        return
    first, second = got
    check(second.messages == [FIRST, SECOND, LATE] and second.carried_over == [first.batch_id],
          "B: the second batch holds all three messages, carried_over=[first batch_id]")  # fmt: skip
    check(second.flush_reason in ("answered", "unanswered"), f"B: its flush_reason is {second.flush_reason}")
    after = (second.received_ms - (first.verdict_ms or 0)) / 1000
    check(first.verdict_ms is not None and after >= 0, f"B: it reached n8n {after:.2f}s after the first verdict")
    check(_verdict_is(second, False, "answered"), "B: its execution sees newer=false and POSTs answered (200)")


def main(argv: list[str]) -> int:
    """Run both scenarios against the n8n at --n8n; 0 when every check passed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n8n", default=os.environ.get("N8N_URL", "http://127.0.0.1:5678"))
    parser.add_argument("--logs", help="keep the API and monitor logs in this folder (default: a temporary one)")
    args = parser.parse_args(argv)
    api_key = os.environ.get("N8N_API_KEY", "")
    if not api_key:
        parser.error("set N8N_API_KEY (an n8n public-API key)")
    n8n, check, tag = N8n(args.n8n, api_key), Check(), secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="datafy-n8n-answering-") as tmp:
        logs = Path(args.logs or tmp)
        logs.mkdir(parents=True, exist_ok=True)
        redis_server = RedisServer().start()
        port = free_port()
        env = {
            "REDIS_URL": redis_server.url,
            "WEBHOOK_URL": f"{n8n.url}/webhook/{WEBHOOK_PATH}",
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "INGEST_AUTH": "off",  # loopback only
            "LOG_LEVEL": "INFO",
            "METRICS_PORT": "0",
            "MONITOR_PROCESSES": "1",
        }
        try:
            api = start_api(env, logs, workers=1, port=port)
            with running(api):
                monitor = start_monitor(env, logs)
                with running(monitor):
                    print("A: the guard, then unanswered", flush=True)
                    check_scenario_a_without_hold(check, run_scenario(n8n, api, monitor, f"5511999-{tag}-a", False))
                    # A's late message (ttl 1 s) leaves on its own before the guard runs (4 s): A2 keeps it
                    # buffered past the guard (ttl 3 s), so unanswered has a pending batch to fold into.
                    print("A2: as A, the late message with ttl 3 s (still buffered when the guard runs)", flush=True)
                    got = run_scenario(n8n, api, monitor, f"5511999-{tag}-a2", False, late_ttl=3)
                    check_scenario_a(check, got, "A2")
                    print("B: await_answer", flush=True)
                    check_scenario_b(check, run_scenario(n8n, api, monitor, f"5511999-{tag}-b", True))
        finally:
            redis_server.cleanup()
    print(f"{'all checks passed' if not check.failures else f'{check.failures} check(s) failed'}")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
