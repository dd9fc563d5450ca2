"""A real local Redis/Valkey Cluster on loopback ports: form it, kill nodes, wait for failover, reshard a slot live."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import TracebackType

import redis

from devtools.redis_server import RedisServer, free_ports, wait_until
from devtools.tls import TlsFiles, find_tls_server_binary

SLOTS = 16384
NODE_TIMEOUT_MS = 1000  # short, so a killed primary is failed over in a few seconds


class ClusterNode(RedisServer):
    """One cluster node: a RedisServer with cluster mode on, its node id and its last known role. With `certs`,
    clients, the cluster bus and replication all go over TLS (no plain TCP port)."""

    def __init__(self, port: int, bus_port: int, password: str = "", certs: TlsFiles | None = None) -> None:
        extra = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]  # relative to its own data dir
        # An explicit bus port: the default (port + 10000) is invalid above 55535 and may be taken.
        extra += ["--cluster-port", str(bus_port)]
        extra += ["--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-announce-ip", "127.0.0.1"]
        # 0 lets a replica take over however long its link was down: tests kill primaries at any moment.
        extra += ["--cluster-replica-validity-factor", "0"]
        extra += ["--repl-diskless-sync-delay", "0"]  # the default waits 5 s for more replicas before a first sync
        if password:
            extra += ["--masterauth", password]  # replicas sync from a primary that requires the password
        if certs:  # later arguments win: --port 0 closes the plain port
            extra += ["--port", "0", "--tls-port", str(port), "--tls-cluster", "yes", "--tls-replication", "yes"]
            extra += ["--tls-cert-file", certs.server_cert, "--tls-key-file", certs.server_key]
            extra += ["--tls-ca-cert-file", certs.ca_cert, "--tls-auth-clients", "optional"]
        binary = find_tls_server_binary() if certs else None
        super().__init__(port=port, password=password, binary=binary, extra_args=extra)
        self.certs = certs
        self.bus_port = bus_port
        self.node_id = ""
        self.role = "primary"  # "primary", "replica" or "stopped"; refreshed by LocalCluster.wait_until_ok()
        self.primary_id = ""  # for a replica: the node id of its primary
        self._client: redis.Redis | None = None

    def probe_client(self) -> redis.Redis:
        """Over the unix socket, as client() is: start-up does not depend on TLS."""
        return redis.Redis(unix_socket_path=self.socket_path, password=self.password or None, socket_timeout=1)

    def client(self) -> redis.Redis:
        """A plain (non-cluster) client of this node only, over its unix socket, bytes in and out; reused."""
        if self._client is None:
            self._client = redis.Redis(unix_socket_path=self.socket_path, password=self.password or None,
                                       socket_timeout=5)  # fmt: skip
        return self._client

    def cleanup(self) -> None:
        """Close the node's client, stop it and delete its data folder."""
        if self._client is not None:
            self._client.close()
        super().cleanup()

    def __repr__(self) -> str:
        return f"ClusterNode({self.port}, {self.role}, {self.node_id[:8]})"


class LocalCluster:
    """`primaries` primaries, each with `replicas_per_primary` replicas, slots spread evenly; over TLS with `certs`."""

    def __init__(
        self, primaries: int = 3, replicas_per_primary: int = 0, password: str = "", certs: TlsFiles | None = None
    ) -> None:
        self.password, self.certs = password, certs
        count = primaries * (1 + replicas_per_primary)
        ports = free_ports(2 * count)
        self.nodes = [ClusterNode(ports[2 * i], ports[2 * i + 1], password, certs) for i in range(count)]
        self._primary_count = primaries

    @property
    def url(self) -> str:
        """The redis:// (rediss:// over TLS) URL of the first node that still runs (clients discover the rest)."""
        node = next(n for n in self.nodes if n.alive)
        auth = f":{self.password}@" if self.password else ""
        return f"{'rediss' if self.certs else 'redis'}://{auth}{node.host}:{node.port}"

    def start(self, timeout: float = 30.0) -> LocalCluster:
        """Start every node, assign slots, join them, attach replicas, and wait until the cluster is ok."""
        try:
            for node in self.nodes:
                node.start()
                node.node_id = _text(node.client().execute_command("CLUSTER", "MYID"))
            self._form(timeout)
        except BaseException:
            self.cleanup()
            raise
        return self

    def _form(self, timeout: float) -> None:
        primaries, replicas = self.nodes[: self._primary_count], self.nodes[self._primary_count :]
        per = SLOTS // len(primaries)
        for i, node in enumerate(primaries):
            first, last = i * per, SLOTS - 1 if i == len(primaries) - 1 else (i + 1) * per - 1
            client = node.client()
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            # Distinct epochs up front, as redis-cli does, so the nodes need not resolve collisions first.
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        first_client = self.nodes[0].client()
        for node in self.nodes[1:]:
            first_client.execute_command("CLUSTER", "MEET", node.host, node.port, node.bus_port)
        wait_until(lambda: all(self._knows_everyone(n) for n in self.nodes), timeout, "nodes to meet")
        for i, node in enumerate(replicas):
            primary = primaries[i % len(primaries)]
            node.client().execute_command("CLUSTER", "REPLICATE", primary.node_id)
            node.role, node.primary_id = "replica", primary.node_id
        self.wait_until_ok(timeout)

    def _knows_everyone(self, node: ClusterNode) -> bool:
        lines = _text(node.client().execute_command("CLUSTER", "NODES")).splitlines()
        return len(lines) == len(self.nodes) and not any("handshake" in line or "noaddr" in line for line in lines)

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """Wait until every running node says cluster_state:ok and all of them report the same slot map."""

        def settled() -> bool:
            alive = [n for n in self.nodes if n.alive]
            if not all(b"cluster_state:ok" in n.client().execute_command("CLUSTER", "INFO") for n in alive):
                return False
            maps = [self._slot_map(n) for n in alive]
            if not all(m == maps[0] for m in maps) or sum(e - s + 1 for s, e, *_ in maps[0]) != SLOTS:
                return False
            for node in alive:
                self._refresh(node)
            # A replica that has not finished its first sync would lose the writes a failover test makes.
            return all(n.client().info("replication").get("master_link_status") == "up" for n in alive if n.primary_id)

        wait_until(settled, timeout, "cluster_state:ok and one slot map on every node")

    def _slot_map(self, node: ClusterNode) -> list[tuple[int, ...]]:
        """(first slot, last slot, primary port, replica ports...) as this node sees it, sorted."""
        rows = node.client().execute_command("CLUSTER", "SLOTS")
        return sorted((row[0], row[1], row[2][1], *sorted(r[1] for r in row[3:])) for row in rows)

    def _refresh(self, node: ClusterNode) -> None:
        """Read the node's role and primary from its own line of CLUSTER NODES."""
        for line in _text(node.client().execute_command("CLUSTER", "NODES")).splitlines():
            _id, _addr, flags, primary_id, *_ = line.split()
            if "myself" in flags.split(","):
                node.role = "replica" if "slave" in flags.split(",") else "primary"
                node.primary_id = "" if primary_id == "-" else primary_id

    def _any_node(self) -> ClusterNode:
        return next(n for n in self.nodes if n.alive)

    def _by_port(self, port: int) -> ClusterNode:
        return next(n for n in self.nodes if n.port == port)

    def primaries(self) -> list[ClusterNode]:
        """The nodes that serve slots now, in slot order."""
        ports = dict.fromkeys(row[2] for row in self._slot_map(self._any_node()))
        return [self._by_port(port) for port in ports]

    def primary_for_slot(self, slot: int) -> ClusterNode:
        """The node that owns `slot` now (during a migration: still the source)."""
        for first, last, port, *_ in self._slot_map(self._any_node()):
            if first <= slot <= last:
                return self._by_port(port)
        raise LookupError(f"slot {slot} is not served")

    def replicas_of(self, primary: ClusterNode) -> list[ClusterNode]:
        """The nodes that replicate `primary`."""
        return [n for n in self.nodes if n.role == "replica" and n.primary_id == primary.node_id]

    def kill(self, node: ClusterNode, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop one node by PID (SIGKILL by default: a crash, no goodbye to the others)."""
        node.stop(sig)
        node.role = "stopped"

    def restart(self, node: ClusterNode, timeout: float = 20.0) -> None:
        """Start a stopped node again on its port and data (a failed-over primary comes back as a replica)."""
        node.start()
        self.wait_until_ok(timeout)

    def wait_for_failover(self, old_primary: ClusterNode, timeout: float = 20.0) -> ClusterNode:
        """Wait until a replica of `old_primary` is a primary and the cluster is ok again; return it."""
        candidates = [n for n in self.nodes if n.primary_id == old_primary.node_id and n.alive]
        if not candidates:
            raise RuntimeError(f"{old_primary!r} has no running replica to promote")

        def promoted() -> ClusterNode | None:
            return next((n for n in candidates if n.client().execute_command("ROLE")[0] == b"master"), None)

        deadline = time.monotonic() + timeout
        new = wait_until(promoted, timeout, f"a replica of {old_primary!r} to be promoted")
        self.wait_until_ok(max(deadline - time.monotonic(), 1.0))
        return new

    def migrate_slot(
        self,
        slot: int,
        target: ClusterNode,
        batch: int = 10,
        on_batch: Callable[[int], None] | None = None,
        pause: float = 0.0,
    ) -> int:
        """Live-reshard one slot to `target` the way redis-cli does; return the number of keys moved.

        on_batch(moved_so_far) runs after every MIGRATE batch and `pause` seconds pass there, so a test
        can write while the slot is half-moved (its clients see ASK, MOVED and TRYAGAIN).
        """
        source = self.primary_for_slot(slot)
        if source is target:
            return 0
        src, dst = source.client(), target.client()
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        moved = 0
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
            # No REPLACE: while the slot migrates, new keys go to the target only, so a clash would be a bug.
            src.migrate(target.host, target.port, keys, 0, 5000, auth=self.password or None)
            moved += len(keys)
            if on_batch is not None:
                on_batch(moved)
            if pause:
                time.sleep(pause)
        # Target first, then source, then the rest: the order redis-cli uses so no node points back at the source.
        dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        for node in self.primaries():
            if node not in (source, target):
                node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        self.wait_until_ok()
        return moved

    def cleanup(self) -> None:
        """Stop every node by PID and delete their data folders."""
        for node in self.nodes:
            node.cleanup()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
