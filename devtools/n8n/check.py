"""Check the n8n signature recipe (verify.js) in a running n8n with real redis-datafy batches. Not run in CI.

Needs an n8n with workflow.json and workflow-retry.json imported and active, WHSEC in its environment and a
public-API key (README.md beside this file). Starts its own Redis, API and monitors on loopback ports:

  N8N_API_KEY=... WHSEC=whsec_... .venv/bin/python -m devtools.n8n.check [--n8n http://127.0.0.1:5678]

Phases: signed batches verify; a rotation (two signatures) verifies; a wrong secret is refused with 401 and
dead-lettered, and its replay with the right secret verifies; a batch the workflow fails once (500) is
retried with a new timestamp and verifies. Prints one line per execution and one per check; exit 1 on a failure.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from devtools.processes import Proc, running, start_api, start_monitor
from devtools.redis_server import RedisServer

HERE = Path(__file__).resolve().parent
MAIN_WORKFLOW = "DatafyVerify0001"  # workflow.json: answers 200 or 401
RETRY_WORKFLOW = "DatafyVerify0002"  # workflow-retry.json: answers 500 to each batch's first attempt
VERIFY_NODE = "Verify signature"
WEBHOOK_NODE = "Batch in"
WAIT_SECONDS = 30


@dataclass(frozen=True)
class Execution:
    """One n8n execution of a batch: what the Webhook node got and what the Code node decided."""

    id: str
    status: str
    user: str
    timestamp: str  # the webhook-timestamp header
    valid: bool | None  # None: the Code node did not run
    batch_id: str
    reason: str
    message_count: int


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

    def workflow_code(self, workflow_id: str) -> str:
        """The JavaScript of the workflow's Verify signature node."""
        nodes = self.get(f"/workflows/{workflow_id}")["nodes"]
        return next(node["parameters"]["jsCode"] for node in nodes if node["name"] == VERIFY_NODE)

    def executions(self, workflow_id: str, users: set[str]) -> list[Execution]:
        """The finished executions of `workflow_id` for `users`, oldest first."""
        found = []
        for raw in self.get("/executions", workflowId=workflow_id, includeData="true", limit=250)["data"]:
            execution = _execution_of(raw)
            if execution and execution.user in users and raw["status"] not in ("new", "running", "waiting"):
                found.append(execution)
        return sorted(found, key=lambda e: int(e.id))


def _execution_of(raw: dict[str, Any]) -> Execution | None:
    run_data = ((raw.get("data") or {}).get("resultData") or {}).get("runData") or {}
    try:
        request = run_data[WEBHOOK_NODE][0]["data"]["main"][0][0]["json"]
    except (KeyError, IndexError, TypeError):
        return None
    try:
        verdict = run_data[VERIFY_NODE][0]["data"]["main"][0][0]["json"]
    except (KeyError, IndexError, TypeError):
        verdict = {}
    body = request.get("body") or {}
    return Execution(
        id=str(raw["id"]),
        status=raw["status"],
        user=str(body.get("user")),
        timestamp=str(request.get("headers", {}).get("webhook-timestamp")),
        valid=verdict.get("valid"),
        batch_id=str(verdict.get("batch_id") or request.get("headers", {}).get("webhook-id")),
        reason=str(verdict.get("reason") or ""),
        message_count=len(verdict.get("messages") or []),
    )


class Check:
    """Counts failures and prints one line per check."""

    def __init__(self) -> None:
        self.failures = 0

    def __call__(self, ok: bool, what: str) -> None:
        self.failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)


def wait_for(get: Callable[[], list[Execution]], count: int) -> list[Execution]:
    """Poll until `get` returns at least `count` executions, or WAIT_SECONDS pass."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = get()
        if len(found) >= count or time.monotonic() > deadline:
            for e in found:
                print(f"     execution {e.id} {e.status:7} user={e.user} batch_id={e.batch_id} valid={e.valid} "
                      f"messages={e.message_count} timestamp={e.timestamp} {e.reason}")  # fmt: skip
            return found
        time.sleep(0.5)


def new_secret() -> str:
    """A Standard Webhooks secret that n8n does not know."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def main(argv: list[str]) -> int:
    """Run every phase against the n8n at --n8n; 0 when every check passed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n8n", default=os.environ.get("N8N_URL", "http://127.0.0.1:5678"))
    args = parser.parse_args(argv)
    whsec, api_key = os.environ.get("WHSEC", ""), os.environ.get("N8N_API_KEY", "")
    if not whsec or not api_key:
        parser.error("set WHSEC (the secret n8n has) and N8N_API_KEY (an n8n public-API key)")
    n8n, check = N8n(args.n8n, api_key), Check()
    recipe = (HERE / "verify.js").read_text()
    for workflow_id in (MAIN_WORKFLOW, RETRY_WORKFLOW):
        check(n8n.workflow_code(workflow_id) == recipe, f"{workflow_id}'s Code node is verify.js")
    tag = secrets.token_hex(3)
    admin_key = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="datafy-n8n-check-") as tmp:
        tmp_path = Path(tmp)
        redis_server = RedisServer().start()
        env = {
            "REDIS_URL": redis_server.url,
            "INGEST_AUTH": "off",  # loopback only
            "ADMIN_API_KEY": admin_key,
            "METRICS_PORT": "0",
            "MONITOR_PROCESSES": "1",
            "WEBHOOK_URL": f"{n8n.url}/webhook/datafy-batch",
            "WEBHOOK_SECRET": whsec,
        }
        try:
            api = start_api(env, tmp_path, workers=1)
            with running(api):
                run_phases(n8n, check, api, env, tmp_path, tag, admin_key)
        finally:
            redis_server.cleanup()
    print(f"{'all checks passed' if not check.failures else f'{check.failures} check(s) failed'}")
    return 1 if check.failures else 0


def run_phases(n8n: N8n, check: Check, api: Proc, env: dict[str, str], tmp_path: Path, tag: str, admin: str) -> None:
    """The four phases, each with its own monitor."""
    url = api.extra["url"]

    def send(user: str, *texts: str) -> None:
        for text in texts:
            reply = requests.post(f"{url}/api/message", json={"user": user, "message": text, "ttl": 1}, timeout=10)
            reply.raise_for_status()

    def monitor(name: str, **overrides: str) -> Proc:
        return start_monitor({**env, **overrides}, tmp_path, name=name)

    print("signed batches, WEBHOOK_SECRET = n8n's WHSEC", flush=True)
    users = {f"check-{tag}-a": 2, f"check-{tag}-b": 1, f"check-{tag}-c": 1}
    with running(monitor("monitor-signed")):
        for user, count in users.items():
            send(user, *(f"message {i} for {user}" for i in range(count)))
        got = wait_for(lambda: n8n.executions(MAIN_WORKFLOW, set(users)), len(users))
    check(len(got) == len(users) and all(e.valid is True and e.status == "success" for e in got),
          f"{len(users)} batches, each valid=true")  # fmt: skip
    check(all(e.message_count == users[e.user] for e in got), "each batch holds its user's messages")

    print("rotation, WEBHOOK_SECRET = '<new> <WHSEC>'", flush=True)
    rotating = f"check-{tag}-rotation"
    with running(monitor("monitor-rotation", WEBHOOK_SECRET=f"{new_secret()} {env['WEBHOOK_SECRET']}")):
        send(rotating, "signed twice")
        got = wait_for(lambda: n8n.executions(MAIN_WORKFLOW, {rotating}), 1)
    check(len(got) == 1 and got[0].valid is True, "a batch with two signatures, one of them right: valid=true")

    print("wrong secret, then the dead letter replayed with the right one", flush=True)
    wrong = f"check-{tag}-wrong"
    with running(monitor("monitor-wrong", WEBHOOK_SECRET=new_secret())):
        send(wrong, "signed with a secret n8n does not know")
        got = wait_for(lambda: n8n.executions(MAIN_WORKFLOW, {wrong}), 1)
        letter = wait_dead_letter(url, admin, wrong)
    check(len(got) == 1 and got[0].valid is False and got[0].reason == "bad signature", "wrong secret: valid=false")
    check(letter is not None and letter["last_status"] == 401 and letter["attempts"] == 1,
          f"wrong secret: answered 401, dead-lettered after one attempt ({letter and letter['reason']})")  # fmt: skip
    if letter is not None:
        with running(monitor("monitor-replay")):
            headers = {"Authorization": f"Bearer {admin}"}
            requests.post(f"{url}/api/dead-letters/{letter['batch_id']}/replay", headers=headers, timeout=10)
            got = wait_for(lambda: n8n.executions(MAIN_WORKFLOW, {wrong}), 2)
        check(len(got) == 2 and got[1].valid is True and got[1].batch_id == letter["batch_id"],
              "the replay with the right secret: same batch_id, valid=true")  # fmt: skip

    print("a batch answered 500 once, retried with a new timestamp", flush=True)
    retried = f"check-{tag}-retry"
    retry_url = f"{n8n.url}/webhook/datafy-batch-retry"
    # A retry step of 4 s waits 2-4 s, so the retry's webhook-timestamp (whole seconds) is a new one.
    with running(monitor("monitor-retry", WEBHOOK_URL=retry_url, WEBHOOK_RETRY_SCHEDULE="4s,4s")):
        send(retried, "failed once on purpose")
        got = wait_for(lambda: n8n.executions(RETRY_WORKFLOW, {retried}), 2)
    check(len(got) == 2 and [e.status for e in got] == ["error", "success"], "first attempt 500, second 200")
    same_batch = len(got) == 2 and got[0].batch_id == got[1].batch_id and got[0].timestamp != got[1].timestamp
    check(same_batch and all(e.valid is True for e in got), "both attempts valid=true: same batch_id, new timestamp")


def wait_dead_letter(url: str, admin: str, user: str) -> dict[str, Any] | None:
    """The dead letter of `user`'s batch, once there (None after WAIT_SECONDS)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        reply = requests.get(f"{url}/api/dead-letters", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
        letters = [letter for letter in reply.json().get("dead_letters", []) if letter["user"] == user]
        if letters:
            return letters[0]
        time.sleep(0.5)
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
