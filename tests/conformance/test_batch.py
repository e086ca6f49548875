"""``put_many`` (all or nothing) and ``get_many`` (DESIGN §4)."""

from __future__ import annotations

import time

import pytest

import leaseq
from leaseq import State

from .helpers import blocked, drain


def test_put_many_values_in_order(make_queue):
    q = make_queue()
    msgs = q.put_many([1, 2, 3])
    assert [m.value for m in msgs] == [1, 2, 3]
    assert all(m.state is State.READY for m in msgs)
    assert len({m.id for m in msgs}) == 3
    assert drain(q) == [1, 2, 3]


def test_put_many_with_options(make_queue, clock):
    q = make_queue()
    msgs = q.put_many(
        [
            ("low", {"key": "low"}),
            ("high", {"key": "high", "priority": 5}),
            ("later", {"key": "later", "delay": 10}),
            "plain",
        ]
    )
    assert [m.key for m in msgs[:3]] == ["low", "high", "later"]
    assert msgs[1].priority == 5
    assert msgs[2].available_at == clock() + 10
    assert drain(q) == ["high", "low", "plain"]
    clock.advance(10)
    assert drain(q) == ["later"]


def test_put_many_of_nothing(make_queue):
    q = make_queue()
    assert q.put_many([]) == []
    assert q.stats().total == 0


def test_put_many_follows_key_policies_within_the_batch(make_queue):
    q = make_queue()
    q.put_many([("v1", {"key": "k"}), ("v2", {"key": "k"})])
    assert drain(q) == ["v2"]


def test_put_many_with_a_bad_item_stores_nothing(make_queue):
    q = make_queue()
    with pytest.raises(ValueError):
        q.put_many(["a", ("b", {"priority": 5000}), "c"])
    assert q.stats().total == 0


def test_put_many_with_a_rejected_key_stores_nothing(make_queue):
    q = make_queue()
    q.put("old", key="k")
    with pytest.raises(leaseq.KeyExists):
        q.put_many([("a", {"key": "a"}), ("new", {"key": "k", "if_ready": "reject"}), "c"])
    assert sorted(q.keys()) == ["k"]
    assert q.peek("k").value == "old"


def test_put_many_with_a_key_in_flight_stores_nothing(make_queue):
    q = make_queue()
    q.put("old", key="k")
    lease = q.get(block=False)
    with pytest.raises(leaseq.KeyInFlight):
        q.put_many(["a", ("new", {"key": "k", "if_in_flight": "reject"})])
    assert q.stats().total == 1
    q.ack(lease)
    assert q.stats().total == 0


def test_put_many_rejects_duplicate_reject_within_the_batch(make_queue):
    q = make_queue()
    with pytest.raises(leaseq.KeyExists):
        q.put_many([("a", {"key": "k"}), ("b", {"key": "k", "if_ready": "reject"})])
    assert q.stats().total == 0


def test_put_many_wakes_blocked_consumers(make_queue):
    q = make_queue()
    call = blocked(q.get, timeout=10)
    q.put_many(["x"])
    assert call.join().value == "x"


def test_get_many_claims_in_delivery_order(make_queue, clock):
    q = make_queue()
    for i in range(5):
        q.put(i, key=f"k{i}")
    q.put("top", key="top", priority=1)
    leases = q.get_many(3, owner="w")
    assert [lease.value for lease in leases] == ["top", 0, 1]
    assert all(lease.attempt == 1 for lease in leases)
    assert len({lease.token for lease in leases}) == 3
    assert q.stats().by_owner == {"w": 3}
    assert [lease.value for lease in q.get_many(10)] == [2, 3, 4]


def test_get_many_sets_lease_timeout(make_queue, clock):
    q = make_queue()
    q.put_many([1, 2])
    leases = q.get_many(2, lease_timeout=4)
    assert {lease.expires_at for lease in leases} == {clock() + 4}


def test_get_many_without_blocking_on_empty_returns_nothing(make_queue):
    q = make_queue()
    assert q.get_many(5, block=False) == []


def test_get_many_timeout_raises_empty(make_queue):
    q = make_queue()
    start = time.monotonic()
    with pytest.raises(leaseq.Empty):
        q.get_many(5, timeout=0.05)
    assert time.monotonic() - start < 1.0


def test_blocked_get_many_returns_at_least_one(make_queue):
    q = make_queue()
    call = blocked(q.get_many, 5, timeout=10)
    q.put("x")
    leases = call.join()
    assert 1 <= len(leases) <= 5
    assert leases[0].value == "x"


@pytest.mark.parametrize("n", [0, -1])
def test_get_many_needs_a_positive_count(make_queue, n):
    q = make_queue()
    with pytest.raises(ValueError):
        q.get_many(n)


def test_get_many_leases_that_expire_together_return_in_one_agreed_order(make_queue, clock):
    # Each lease of one get_many has its own operation number: when they expire
    # at the same moment, every store puts them back in the same order. The head
    # is a stack (DESIGN §2), so the last claimed comes back first.
    q = make_queue()
    q.put_many(["a", "b", "c", "d"])
    leases = q.get_many(3, lease_timeout=5)
    assert len({lease.token for lease in leases}) == 3
    clock.advance(6)
    assert drain(q) == ["c", "b", "a", "d"]
    for lease in leases:
        with pytest.raises(leaseq.LeaseLost):
            q.ack(lease)
