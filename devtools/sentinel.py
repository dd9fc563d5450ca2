"""A real local Sentinel setup on loopback ports: one primary, its replicas, three sentinels; kill and fail over."""

from __future__ import annotations

import signal
from pathlib import Path
from types import TracebackType

import redis

from devtools.redis_server import RedisServer, free_ports, wait_until

DOWN_AFTER_MS = 1000  # a killed primary is subjectively down after a second
FAILOVER_TIMEOUT_MS = 3000  # short: a failed election is retried after twice this


class SentinelProcess(RedisServer):
    """One sentinel: the server binary in sentinel mode with its own (rewritable) config file in its data dir."""

    def __init__(
        self, port: int, master_name: str, primary: RedisServer, quorum: int, password: str = "", own_password: str = ""
    ) -> None:
        super().__init__(port=port)
        self.own_password = own_password
        self.config = Path(self.data_dir) / "sentinel.conf"
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {self.data_dir}",
            f"logfile {self.data_dir}/sentinel.log",
            "daemonize no",
            f"sentinel monitor {master_name} {primary.host} {primary.port} {quorum}",
            f"sentinel down-after-milliseconds {master_name} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {master_name} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {master_name} 1",
        ]
        if password:
            lines.append(f"sentinel auth-pass {master_name} {password}")
        if own_password:  # clients and the other sentinels must authenticate to this one
            lines += [f"requirepass {own_password}", f"sentinel sentinel-pass {own_password}"]
        # Sentinel rewrites this file as it learns the topology, so it must be its own, writable copy.
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        """The redis:// URL of this sentinel."""
        auth = f":{self.own_password}@" if self.own_password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The binary, this sentinel's config file and --sentinel."""
        return [self.binary, str(self.config), "--sentinel"]


class LocalSentinel:
    """`replicas` replicas of one primary watched by `sentinels` sentinels (quorum: a majority of them).
    `password`: the data nodes'; `sentinel_password`: the sentinels' own (requirepass), none by default."""

    def __init__(
        self,
        replicas: int = 1,
        sentinels: int = 3,
        master_name: str = "mymaster",
        password: str = "",
        sentinel_password: str = "",
    ) -> None:
        self.master_name = master_name
        self.password, self.sentinel_password = password, sentinel_password
        ports = free_ports(1 + replicas + sentinels)
        self.primary = RedisServer(port=ports[0], password=password, extra_args=self._data_args())
        self.replicas = [
            RedisServer(
                port=port,
                password=password,
                extra_args=[*self._data_args(), "--replicaof", "127.0.0.1", str(ports[0])],
            )
            for port in ports[1 : 1 + replicas]
        ]
        self.nodes = [self.primary, *self.replicas]  # every data node, whatever its role is now
        self._clients: dict[int, redis.Redis] = {}
        quorum = sentinels // 2 + 1
        self.sentinel_processes = [
            SentinelProcess(port, master_name, self.primary, quorum, password, sentinel_password)
            for port in ports[1 + replicas :]
        ]

    def _data_args(self) -> list[str]:
        # No 5 s wait before a first sync; replicas announce 127.0.0.1 so sentinels learn no other address.
        args = ["--repl-diskless-sync-delay", "0", "--replica-announce-ip", "127.0.0.1"]
        return args + (["--masterauth", self.password] if self.password else [])

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """(host, port) of every sentinel, as redis.sentinel.Sentinel takes them."""
        return [(s.host, s.port) for s in self.sentinel_processes]

    def start(self, timeout: float = 30.0) -> LocalSentinel:
        """Start the primary, its replicas and the sentinels; wait until every sentinel sees all of them."""
        try:
            for server in (*self.nodes, *self.sentinel_processes):
                server.start()
            wait_until(self._ready, timeout, "replicas in sync and every sentinel aware of the others")
        except BaseException:
            self.cleanup()
            raise
        return self

    def _ready(self) -> bool:
        for replica in self.replicas:
            if self._client(replica).info("replication").get("master_link_status") != "up":
                return False
        for sentinel in self.sentinel_processes:
            state = self._client(sentinel).sentinel_master(self.master_name)
            # Without knowing the replicas and the other sentinels a sentinel can neither vote nor promote.
            if state["num-slaves"] != len(self.replicas) or state["num-other-sentinels"] != len(self.sentinels) - 1:
                return False
        return True

    def _client(self, server: RedisServer) -> redis.Redis:
        """One reused client per process, text in and out."""
        if server.port not in self._clients:
            password = (self.sentinel_password if isinstance(server, SentinelProcess) else self.password) or None
            self._clients[server.port] = redis.Redis(
                host=server.host, port=server.port, password=password, socket_timeout=2, decode_responses=True
            )
        return self._clients[server.port]

    def kill_primary(self, sig: signal.Signals = signal.SIGKILL) -> RedisServer:
        """Stop the current primary by PID (SIGKILL by default: a crash); return it."""
        self.primary.stop(sig)
        return self.primary

    def wait_for_new_primary(self, timeout: float = 30.0) -> RedisServer:
        """Wait until every sentinel names another running node as primary and that node says so; return it."""
        old = self.primary

        def promoted() -> RedisServer | None:
            answers = {
                self._client(s).sentinel_get_master_addr_by_name(self.master_name) for s in self.sentinel_processes
            }
            if len(answers) != 1:
                return None
            _host, port = answers.pop()
            node = next((n for n in self.nodes if n.port == int(port) and n.alive), None)
            if node is None or node is old or self._client(node).execute_command("ROLE")[0] != "master":
                return None
            return node

        self.primary = wait_until(promoted, timeout, f"sentinels to promote a replica of {old.port}", interval=0.1)
        return self.primary

    def cleanup(self) -> None:
        """Stop every process by PID and delete their data folders."""
        for client in self._clients.values():
            client.close()
        for server in (*self.sentinel_processes, *self.nodes):
            server.cleanup()

    def __enter__(self) -> LocalSentinel:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
