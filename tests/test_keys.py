"""Key names: one partition hash tag per user, no collisions whatever the user id contains."""

from __future__ import annotations

import re
from dataclasses import astuple

from datafy.keys import PARTITIONS, KeySpace, partition_of

TAG = re.compile(r"\{([^}]*)\}")
ODD_USERS = ["5511999", "a:b", "{x}", "}{", "a}b{c", "*", "with space", "😀", "buf:x", ":timer:"]


def hash_tag(key: str) -> str:
    """The part of the key Redis Cluster hashes: the first {...} with something inside."""
    match = TAG.search(key)
    assert match and match.group(1), key
    return match.group(1)


def test_all_keys_of_a_user_share_the_partition_tag() -> None:
    space = KeySpace("datafy")
    for user in ODD_USERS:
        keys = [*astuple(space.user(user)), *astuple(space.indexes_of(user))]
        assert {hash_tag(k) for k in keys} == {str(partition_of(user))}


def test_keys_do_not_collide_across_users_or_kinds() -> None:
    space = KeySpace("datafy")
    names = [k for user in ODD_USERS for k in astuple(space.user(user))]
    assert len(names) == len(set(names))


def test_timer_key_round_trips_to_its_user() -> None:
    space = KeySpace("datafy")
    for user in ODD_USERS:
        assert space.user_of_timer(space.user(user).timer) == user
    assert space.user_of_timer("other:{1}:timer:x") is None
    assert space.user_of_timer(space.user("x").buffer) is None


def test_partitions_spread_users() -> None:
    used = {partition_of(f"user-{i}") for i in range(1000)}
    assert used == set(range(PARTITIONS))
