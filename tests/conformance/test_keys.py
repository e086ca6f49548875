"""Keys: at most one live message and one lease per key; the put policies (DESIGN §2)."""

from __future__ import annotations

import pytest

import leaseq
from leaseq import State

from .helpers import drain, drain_keys


def test_key_defaults_to_the_message_id(make_queue):
    q = make_queue()
    msg = q.put("x")
    assert msg.key == msg.id
    assert q.get(block=False).key == msg.id


def test_put_returns_a_ready_message(make_queue, clock):
    q = make_queue()
    msg = q.put({"n": 1}, key="k", priority=3)
    assert (msg.key, msg.value, msg.priority, msg.state) == ("k", {"n": 1}, 3, State.READY)
    assert msg.attempts == 0
    assert msg.created_at == clock()
    assert msg.available_at == clock()
    assert msg.lease_expires_at is None
    assert msg.leased_by is None
    assert msg.last_error is None


# --- if_ready ------------------------------------------------------------------------


def test_if_ready_update_keeps_place_priority_and_availability(make_queue, clock):
    q = make_queue()
    first = q.put("a1", key="a")
    q.put("b1", key="b")
    clock.advance(1)
    updated = q.put("a2", key="a", priority=5, delay=10)
    assert updated.id == first.id
    assert updated.value == "a2"
    assert updated.priority == 0
    assert updated.available_at == first.available_at
    assert [(lease.key, lease.value) for lease in _claim_all(q)] == [("a", "a2"), ("b", "b1")]


def test_if_ready_update_is_the_default(make_queue):
    q = make_queue()
    q.put("a1", key="a")
    q.put("b1", key="b")
    q.put("a2", key="a")
    assert drain(q) == ["a2", "b1"]
    assert q.stats().total == 0


def test_if_ready_update_of_a_delayed_message_keeps_it_delayed(make_queue, clock):
    q = make_queue()
    q.put("a1", key="a", delay=10)
    q.put("a2", key="a")
    assert drain(q) == []
    clock.advance(10)
    assert drain(q) == ["a2"]


def test_if_ready_replace_goes_to_the_back(make_queue, clock):
    q = make_queue()
    q.put("a1", key="a")
    q.put("b1", key="b")
    clock.advance(1)
    msg = q.put("a2", key="a", if_ready="replace")
    assert (msg.value, msg.state) == ("a2", State.READY)
    assert [(lease.key, lease.value) for lease in _claim_all(q)] == [("b", "b1"), ("a", "a2")]


def test_if_ready_replace_applies_the_new_priority(make_queue):
    q = make_queue()
    q.put("b1", key="b")
    q.put("a1", key="a")
    msg = q.put("a2", key="a", priority=5, if_ready="replace")
    assert msg.priority == 5
    assert drain_keys(q) == ["a", "b"]


def test_if_ready_replace_applies_the_new_delay(make_queue, clock):
    # Debouncing: every replace pushes the work further out.
    q = make_queue()
    q.put("a1", key="a", delay=5)
    clock.advance(4)
    msg = q.put("a2", key="a", delay=5, if_ready="replace")
    assert msg.available_at == clock() + 5
    clock.advance(4)
    assert drain(q) == []
    clock.advance(1)
    assert drain(q) == ["a2"]


def test_if_ready_replace_without_delay_makes_a_delayed_message_available(make_queue, clock):
    q = make_queue()
    q.put("a1", key="a", delay=100)
    q.put("a2", key="a", if_ready="replace")
    assert drain(q) == ["a2"]
    assert q.stats().total == 0


def test_if_ready_keep_returns_the_existing_message_unchanged(make_queue, clock):
    q = make_queue()
    first = q.put("a1", key="a", priority=2)
    clock.advance(1)
    kept = q.put("a2", key="a", priority=9, delay=3, if_ready="keep")
    assert kept.id == first.id
    assert (kept.value, kept.priority, kept.available_at) == ("a1", 2, first.available_at)
    assert q.peek("a").value == "a1"
    assert drain(q) == ["a1"]


def test_if_ready_reject_raises_key_exists_and_changes_nothing(make_queue):
    q = make_queue()
    q.put("a1", key="a")
    with pytest.raises(leaseq.KeyExists) as info:
        q.put("a2", key="a", if_ready="reject")
    assert info.value.key == "a"
    assert q.peek("a").value == "a1"
    assert drain(q) == ["a1"]


def test_if_ready_reject_sees_delayed_messages(make_queue):
    q = make_queue()
    q.put("a1", key="a", delay=60)
    with pytest.raises(leaseq.KeyExists):
        q.put("a2", key="a", if_ready="reject")


def test_if_ready_reject_accepts_an_absent_key(make_queue):
    q = make_queue()
    assert q.put("a1", key="a", if_ready="reject").value == "a1"


# --- if_in_flight --------------------------------------------------------------------


def test_if_in_flight_update_is_redelivered_after_release(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    lease = q.get(block=False)
    msg = q.put("v2", key="k")  # default: update
    assert msg.id == lease.id
    assert msg.value == "v2"
    assert msg.state is State.LEASED
    assert lease.value == "v1"  # the held snapshot does not change
    assert q.peek("k").value == "v2"
    q.release(lease)
    again = q.get(block=False)
    assert (again.value, again.attempt) == ("v2", 2)


def test_if_in_flight_update_is_redelivered_after_expiry(make_queue, clock):
    q = make_queue(lease_timeout=10)
    q.put("v1", key="k")
    lease = q.get(block=False)
    q.put("v2", key="k", if_in_flight="update")
    clock.advance(10)
    again = q.get(block=False)
    assert (again.key, again.value, again.attempt) == ("k", "v2", 2)
    assert again.id == lease.id


def test_if_in_flight_update_is_dropped_by_ack(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    lease = q.get(block=False)
    q.put("v2", key="k", if_in_flight="update")
    q.ack(lease)
    assert "k" not in q
    assert q.peek("k") is None
    assert drain(q) == []
    assert q.stats().total == 0


def test_if_in_flight_reject_raises_key_in_flight_and_changes_nothing(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    lease = q.get(block=False)
    with pytest.raises(leaseq.KeyInFlight) as info:
        q.put("v2", key="k", if_in_flight="reject")
    assert info.value.key == "k"
    assert q.peek("k").value == "v1"
    q.release(lease)
    assert drain(q) == ["v1"]


def test_if_in_flight_reject_does_not_apply_to_ready_keys(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    q.put("v2", key="k", if_in_flight="reject")
    assert drain(q) == ["v2"]


def test_if_in_flight_keep_returns_the_held_message(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    lease = q.get(block=False)
    kept = q.put("v2", key="k", if_in_flight="keep")
    assert kept.id == lease.id
    assert (kept.value, kept.state) == ("v1", State.LEASED)
    q.ack(lease)
    assert q.stats().total == 0


def test_if_in_flight_buffer_becomes_ready_after_ack_newest_wins(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    lease = q.get(block=False)
    q.put("v2", key="k", if_in_flight="buffer")
    q.put("v3", key="k", if_in_flight="buffer")
    # Never two leases on one key: the follow-up is not claimable while k is held.
    with pytest.raises(leaseq.Empty):
        q.get(block=False)
    with pytest.raises(leaseq.Empty):
        q.take("k", block=False)
    q.ack(lease)
    follow = q.get(block=False)
    assert (follow.key, follow.value, follow.attempt) == ("k", "v3", 1)
    assert follow.id != lease.id
    q.ack(follow)
    assert q.stats().total == 0


def test_if_in_flight_buffer_is_what_release_redelivers(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    lease = q.get(block=False)
    q.put("v2", key="k", if_in_flight="buffer")
    q.put("v3", key="k", if_in_flight="buffer")
    q.release(lease)
    again = q.get(block=False)
    assert (again.key, again.value) == ("k", "v3")
    with pytest.raises(leaseq.Empty):
        q.get(block=False)
    q.ack(again)
    assert q.stats().total == 0  # the follow-up was consumed by the redelivery


def test_if_in_flight_buffer_is_what_expiry_redelivers(make_queue, clock):
    q = make_queue(lease_timeout=5)
    q.put("v1", key="k")
    q.get(block=False)
    q.put("v2", key="k", if_in_flight="buffer")
    clock.advance(5)
    again = q.get(block=False)
    assert (again.key, again.value, again.attempt) == ("k", "v2", 2)
    with pytest.raises(leaseq.Empty):
        q.get(block=False)
    q.ack(again)
    assert q.stats().total == 0


def test_if_in_flight_buffer_follow_up_can_be_buffered_again(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    first = q.get(block=False)
    q.put("v2", key="k", if_in_flight="buffer")
    q.ack(first)
    second = q.get(block=False)
    q.put("v3", key="k", if_in_flight="buffer")
    q.ack(second)
    assert drain(q) == ["v3"]


def test_if_in_flight_buffer_on_a_ready_key_follows_if_ready(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    q.put("v2", key="k", if_in_flight="buffer")
    assert drain(q) == ["v2"]


def test_if_in_flight_buffer_applies_after_an_update_of_the_held_value(make_queue):
    # An in-flight update replaces the held value; a later buffer adds a follow-up.
    q = make_queue()
    q.put("v1", key="k")
    lease = q.get(block=False)
    q.put("v2", key="k", if_in_flight="update")
    q.put("v3", key="k", if_in_flight="buffer")
    q.ack(lease)
    assert drain(q) == ["v3"]


def test_expired_lease_counts_as_ready_for_the_policies(make_queue, clock):
    q = make_queue(lease_timeout=5)
    q.put("v1", key="k")
    q.get(block=False)
    clock.advance(5)
    with pytest.raises(leaseq.KeyExists):
        q.put("v2", key="k", if_ready="reject")
    q.put("v2", key="k", if_in_flight="reject")  # not in flight any more: update
    again = q.get(block=False)
    assert (again.value, again.attempt) == ("v2", 2)


# --- DEAD keys ------------------------------------------------------------------------


def test_put_on_a_dead_key_creates_a_new_live_message(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    lease = q.get(block=False)
    q.dead_letter(lease, error="bad")
    assert "k" not in q
    fresh = q.put("v2", key="k", if_ready="reject", if_in_flight="reject")
    assert fresh.id != lease.id
    assert (fresh.state, fresh.attempts) == (State.READY, 0)
    assert [m.id for m in q.dead_letters()] == [lease.id]
    again = q.get(block=False)
    assert (again.value, again.attempt) == ("v2", 1)


def test_requeue_dead_refuses_a_key_that_is_live_again(make_queue):
    q = make_queue()
    q.put("v1", key="k")
    lease = q.get(block=False)
    q.dead_letter(lease)
    q.put("v2", key="k")
    with pytest.raises(leaseq.KeyExists):
        q.requeue_dead(lease.id)
    assert [m.id for m in q.dead_letters()] == [lease.id]


def _claim_all(q):
    leases = []
    while True:
        try:
            lease = q.get(block=False)
        except leaseq.Empty:
            return leases
        leases.append(lease)
        q.ack(lease)
