"""`./dev run`: the whole system on one machine: Redis/Valkey, the API on :5000, the monitor, a demo receiver."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import ExitStack

from dotenv import load_dotenv

from devtools.cluster import LocalCluster
from devtools.receiver import Receiver
from devtools.redis_server import PROJECT_ROOT, RedisServer, free_port
from devtools.sentinel import LocalSentinel

DEMO_RECEIVER_PORT = 8787


def print_batch(batch: dict) -> None:
    """The demo receiver's output: one block per batch."""
    lines = [f"--- batch for user {batch.get('user')!r}: {batch.get('message_count')} message(s), "
             f"reason {batch.get('flush_reason')}, batch_id {batch.get('batch_id')}"]  # fmt: skip
    lines += [f"    {json.dumps(m, ensure_ascii=False)}" for m in batch.get("messages", [])]
    print("\n".join(lines), flush=True)


STATUS_ENV = PROJECT_ROOT / ".run" / "dev-run.env"


def main(argv: list[str]) -> int:
    """Start everything, print where it listens, and stop it all on Ctrl-C."""
    load_dotenv(PROJECT_ROOT / ".env")
    env = dict(os.environ)
    with ExitStack() as stack:
        redis_line = start_redis(argv[0] if argv else "", env, stack)
        remember_redis(env, stack)
        return run_system(env, redis_line)


def remember_redis(env: dict[str, str], stack: ExitStack) -> None:
    """Where this run's Redis is, in .run/dev-run.env while it runs, so that `./dev status` finds it."""
    names = ("REDIS_URL", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER")
    STATUS_ENV.parent.mkdir(parents=True, exist_ok=True)
    STATUS_ENV.write_text("".join(f"{name}={env[name]}\n" for name in names if env.get(name)))
    stack.callback(STATUS_ENV.unlink, missing_ok=True)


def start_redis(topology: str, env: dict[str, str], stack: ExitStack) -> str:
    """Start the chosen local Redis (one server with its data in .run/redis, a Cluster or a Sentinel set-up),
    point `env` at it, and return the line that describes it."""
    if topology == "--cluster":
        cluster = stack.enter_context(LocalCluster(primaries=3))
        env["REDIS_URL"] = cluster.url
        ports = ", ".join(str(node.port) for node in cluster.primaries())
        return f"a 3-primary Cluster on 127.0.0.1 ports {ports} (data deleted at exit)"
    if topology == "--sentinel":
        sentinel = stack.enter_context(LocalSentinel(replicas=1, sentinels=3))
        env["REDIS_SENTINELS"] = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
        env["REDIS_SENTINEL_MASTER"] = sentinel.master_name
        return f"a primary on {sentinel.primary.port}, a replica and 3 Sentinels on {env['REDIS_SENTINELS']}"
    if topology:
        raise SystemExit(f"unknown option {topology!r}: ./dev run [--cluster | --sentinel]")
    data_dir = PROJECT_ROOT / ".run" / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = int(env.get("REDIS_PORT") or 6379)
    redis_server = RedisServer(port=port if _port_free(port) else free_port(), data_dir=str(data_dir))
    redis_server.start()
    stack.callback(redis_server.stop)
    env["REDIS_URL"] = redis_server.url
    return f"{redis_server.binary} on 127.0.0.1:{redis_server.port} (data in {data_dir})"


def run_system(env: dict[str, str], redis_line: str) -> int:
    """The API, the monitor and (without WEBHOOK_URL) the demo receiver, until Ctrl-C."""
    receiver = None
    if not env.get("WEBHOOK_URL"):
        receiver = Receiver(port=DEMO_RECEIVER_PORT if _port_free(DEMO_RECEIVER_PORT) else 0, on_batch=print_batch)
        receiver.start()
        env["WEBHOOK_URL"] = receiver.url
    if not env.get("API_KEY") and env.get("INGEST_AUTH", "on").lower() not in ("off", "false", "0", "no"):
        env["API_KEY"] = local_api_key()
    key = env.get("API_KEY", "").split(",")[0].strip()
    key_header = f"-H 'X-API-Key: {key}' " if key else ""
    api_port = env.get("PORT", "5000")
    env.setdefault("WEB_CONCURRENCY", "2")
    env.setdefault("HOST", "127.0.0.1")  # the monitor's metrics (METRICS_PORT) stay on this machine
    children = [
        subprocess.Popen([sys.executable, "-m", "gunicorn", "api:app", "--bind", f"127.0.0.1:{api_port}"],
                         cwd=PROJECT_ROOT, env=env),
        subprocess.Popen([sys.executable, "monitor.py"], cwd=PROJECT_ROOT, env=env),
    ]  # fmt: skip
    print(
        f"\nredis-datafy is running\n"
        f"  redis     {redis_line}\n"
        f"  api       http://127.0.0.1:{api_port}/api/message\n"
        f"  webhook   {env['WEBHOOK_URL']}{'  (demo receiver: batches are printed here)' if receiver else ''}\n"
        f"  api key   {key or '(none: INGEST_AUTH=off)'}\n"
        f"Try:  curl -s localhost:{api_port}/api/message {key_header}-H 'Content-Type: application/json' "
        f"""-d '{{"user": "5511999999999", "message": "oi", "ttl": 3}}'\n"""
        f"State: ./dev status   Metrics: {_metrics_line(env)}\n"
        f"Ctrl-C stops everything.\n",
        flush=True,
    )
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=25)
            except subprocess.TimeoutExpired:
                child.kill()
        if receiver:
            receiver.stop()
    return 0


def _metrics_line(env: dict[str, str]) -> str:
    """Where the monitor's metrics are, as ./dev run started it."""
    port = (env.get("METRICS_PORT") or "9464").strip()
    return "off (METRICS_PORT=0)" if port == "0" else f"http://127.0.0.1:{port}/metrics (monitor)"


def local_api_key() -> str:
    """Ingest always needs a key: without API_KEY, one made once and kept in .run/api-key for the README's curl."""
    path = PROJECT_ROOT / ".run" / "api-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
