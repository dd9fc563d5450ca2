"""LocalSentinel: sentinels see the primary and its replica, and promote the replica when the primary dies."""

from __future__ import annotations

from redis.sentinel import Sentinel

from devtools.sentinel import LocalSentinel

PASSWORD = "sentinel-secret"  # the data nodes' password; sentinels need it (auth-pass) to fail them over


def test_after_the_primary_is_killed_clients_reach_the_promoted_replica() -> None:
    with LocalSentinel(replicas=1, sentinels=3, password=PASSWORD) as setup:
        sentinel = Sentinel(setup.sentinels, password=PASSWORD, socket_timeout=2)
        try:
            old = setup.primary
            assert sentinel.discover_master(setup.master_name) == (old.host, old.port)
            primary = sentinel.master_for(setup.master_name, decode_responses=True)
            primary.set("greeting", "before")
            assert primary.wait(1, 2000) == 1  # the replica has it before the crash

            killed = setup.kill_primary()
            promoted = setup.wait_for_new_primary(timeout=30)

            assert killed is old and not old.alive
            assert promoted is setup.replicas[0] is setup.primary
            assert sentinel.discover_master(setup.master_name) == (promoted.host, promoted.port)
            assert primary.get("greeting") == "before"  # the same client object follows the sentinels
            fresh = sentinel.master_for(setup.master_name, decode_responses=True)
            assert fresh.set("greeting", "after") and fresh.get("greeting") == "after"
            assert fresh.connection_pool.get_master_address() == (promoted.host, promoted.port)
            primary.close()
            fresh.close()
        finally:
            for client in sentinel.sentinels:
                client.close()
