"""``MemoryStore``'s maps: a live message lives in ``by_key`` only (a keyless
message's key is its id; a keyed message's id ends with ``:<key>``), a dead one in
``dead`` only. Every transition keeps that, lookups by id find all of them, and
nothing is left after the last ack."""

from __future__ import annotations

import pytest

from leaseq._core.model import State
from leaseq.errors import LeaseLost
from leaseq.stores.base import PutRequest
from leaseq.stores.memory import MemoryStore

Q = "q"


def _maps(s: MemoryStore) -> tuple[set[str], set[str]]:
    q = s._queues[Q]
    return set(q.by_key), set(q.dead)


def _check(s: MemoryStore) -> None:
    """The invariant, from the records themselves."""
    q = s._queues[Q]
    for key, rec in q.by_key.items():
        mid = rec[0]
        assert rec[1] == key
        assert mid == key or mid.endswith(f":{key}")
        assert q.find(mid) is rec
    for mid, rec in q.dead.items():
        assert rec[0] == mid and rec[2] is not None
        assert q.by_key.get(rec[1]) is not rec and q.find(mid) is rec


def test_keyless_and_keyed_messages_are_found_by_id_through_every_state() -> None:
    s = MemoryStore()
    plain = s.put(Q, PutRequest("plain", max_attempts=1), now=0.0)
    keyed = s.put(Q, PutRequest("keyed", key="k", max_attempts=1), now=0.0)
    _check(s)
    assert _maps(s) == ({plain.id, "k"}, set())
    assert ":" not in plain.id and keyed.id.endswith(":k")
    for m in (plain, keyed):
        assert s.get_message(Q, m.id, now=0.0) == m
    leases = s.claim(Q, now=0.0, lease_timeout=5.0, owner=None, limit=2)
    _check(s)
    assert {lease.message.id for lease in leases} == {plain.id, keyed.id}
    # Both expire on their only attempt: DEAD, found by id in ``dead`` only.
    assert s.count_live(Q, now=10.0) == 0
    _check(s)
    assert _maps(s) == (set(), {plain.id, keyed.id})
    for m in (plain, keyed):
        found = s.get_message(Q, m.id, now=10.0)
        assert found is not None and found.state is State.DEAD
    # Requeued: live again, in the same maps as before.
    for m in (plain, keyed):
        s.requeue_dead(Q, m.id, now=10.0)
    _check(s)
    assert _maps(s) == ({plain.id, "k"}, set())
    for lease in s.claim(Q, now=10.0, lease_timeout=5.0, owner=None, limit=2):
        s.ack(Q, lease, now=11.0)
    assert _maps(s) == (set(), set())
    for m in (plain, keyed):
        assert s.get_message(Q, m.id, now=11.0) is None


def test_prune_and_replace_leave_no_entry_behind() -> None:
    s = MemoryStore()
    first = s.put(Q, PutRequest("v1", key="k"), now=0.0)
    second = s.put(Q, PutRequest("v2", key="k", if_ready="replace"), now=0.0)
    _check(s)
    assert _maps(s) == ({"k"}, set())
    assert s.get_message(Q, second.id, now=0.0) is not None
    assert s.get_message(Q, first.id, now=0.0) is None
    lease = s.claim(Q, now=0.0, lease_timeout=5.0, owner=None)[0]
    s.dead_letter(Q, lease, now=1.0, error="bad")
    _check(s)
    assert s.prune_dead(Q, before=2.0) == 1
    assert _maps(s) == (set(), set())


def test_an_ack_with_a_lease_whose_key_was_replaced_is_fenced() -> None:
    s = MemoryStore()
    s.put(Q, PutRequest("v1", key="k"), now=0.0)
    old = s.claim(Q, now=0.0, lease_timeout=5.0, owner=None)[0]
    # The lease expires; a replacing put makes a new message under the same key.
    s.put(Q, PutRequest("v2", key="k", if_ready="replace"), now=6.0)
    _check(s)
    with pytest.raises(LeaseLost):
        s.ack(Q, old, now=6.0)
    new = s.claim(Q, now=6.0, lease_timeout=5.0, owner=None)[0]
    assert new.value == "v2"
    s.ack(Q, new, now=7.0)
    assert _maps(s) == (set(), set())


def test_a_user_key_equal_to_an_id_string_is_still_consistent() -> None:
    s = MemoryStore()
    m = s.put(Q, PutRequest("plain"), now=0.0)
    # The same text, another object: the maps must not confuse it with the id.
    twin = "".join(list(m.id))
    lease = s.claim(Q, now=0.0, lease_timeout=5.0, owner=None)[0]
    forged = lease._replace(key=twin, message=lease.message._replace(key=twin))
    s.ack(Q, forged, now=1.0)
    assert _maps(s) == (set(), set())


@pytest.mark.parametrize("key", ["", "a:b", "m1-2", ":"])
def test_odd_keys_are_found_by_id_and_do_not_find_others(key: str) -> None:
    s = MemoryStore()
    m = s.put(Q, PutRequest("v", key=key), now=0.0)
    plain = s.put(Q, PutRequest("p"), now=0.0)
    _check(s)
    assert s.get_message(Q, m.id, now=0.0) == m
    assert s.get_message(Q, plain.id, now=0.0) == plain
    # An id with the right key but another number is not this message.
    other = m.id.replace(":", "0:", 1)
    assert s.get_message(Q, other, now=0.0) is None
    assert s.get_message(Q, key, now=0.0) is None or key == plain.id
