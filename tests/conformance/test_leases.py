"""Leases, fencing, attempts and max_attempts (DESIGN §2)."""

from __future__ import annotations

import pytest

import leaseq
from leaseq import State

from .helpers import drain, drain_keys

OPS = ["ack", "release", "extend", "dead_letter"]


def _use(q, op, lease):
    """Apply one lease-taking operation."""
    if op == "extend":
        return q.extend(lease, 10)
    return getattr(q, op)(lease)


def test_get_returns_a_lease_on_the_queue_clock(make_queue, clock):
    q = make_queue(lease_timeout=10)
    msg = q.put({"to": "a@b"}, key="user-42")
    lease = q.get(block=False, owner="w1")
    assert (lease.key, lease.value, lease.attempt) == ("user-42", {"to": "a@b"}, 1)
    assert lease.id == msg.id
    assert lease.expires_at == clock() + 10
    assert isinstance(lease.token, str) and lease.token
    m = lease.message
    assert (m.id, m.state, m.attempts, m.leased_by) == (msg.id, State.LEASED, 1, "w1")
    assert m.lease_expires_at == lease.expires_at


def test_default_lease_timeout_is_thirty_seconds(make_queue, clock):
    q = make_queue()
    q.put("x")
    assert q.get(block=False).expires_at == clock() + 30


def test_lease_timeout_per_call(make_queue, clock):
    q = make_queue(lease_timeout=10)
    q.put("x", key="x")
    q.put("y", key="y")
    assert q.get(block=False, lease_timeout=2).expires_at == clock() + 2
    assert q.take("y", block=False, lease_timeout=7).expires_at == clock() + 7


def test_every_claim_gets_a_new_token(make_queue):
    q = make_queue()
    q.put("x", key="x")
    tokens = set()
    for _ in range(5):
        lease = q.get(block=False)
        tokens.add(lease.token)
        q.release(lease)
    assert len(tokens) == 5


def test_ack_removes_the_message(make_queue):
    q = make_queue()
    q.put("x", key="k")
    lease = q.get(block=False)
    assert q.ack(lease) is None
    assert "k" not in q
    assert q.peek("k") is None
    assert q.stats().total == 0


@pytest.mark.parametrize("op", OPS)
def test_after_ack_the_token_is_lost(make_queue, op):
    q = make_queue()
    q.put("x", key="k")
    lease = q.get(block=False)
    q.ack(lease)
    with pytest.raises(leaseq.LeaseLost) as info:
        _use(q, op, lease)
    assert info.value.reason == "acked_or_removed"
    assert info.value.message_id == lease.id
    assert info.value.attempt == 1


@pytest.mark.parametrize("op", OPS)
def test_after_expiry_the_token_is_lost_without_a_reclaim(make_queue, clock, op):
    q = make_queue(lease_timeout=10)
    q.put("x", key="k")
    lease = q.get(block=False)
    clock.advance(10)  # exactly at expires_at: now < lease_expires_at no longer holds
    with pytest.raises(leaseq.LeaseLost) as info:
        _use(q, op, lease)
    assert info.value.reason == "expired"
    # The failed call changed nothing: the message is claimable, attempt 2 next.
    assert q.peek("k").state is State.READY
    again = q.get(block=False)
    assert (again.key, again.attempt) == ("k", 2)


@pytest.mark.parametrize("op", OPS)
def test_after_a_reclaim_the_old_token_is_lost(make_queue, clock, op):
    q = make_queue(lease_timeout=10)
    q.put("x", key="k")
    old = q.get(block=False)
    clock.advance(11)
    new = q.take("k", block=False)
    with pytest.raises(leaseq.LeaseLost) as info:
        _use(q, op, old)
    assert info.value.reason == "claimed_again"
    assert info.value.attempt == 1
    # The new holder is untouched.
    assert q.peek("k").state is State.LEASED
    q.ack(new)
    assert q.stats().total == 0


@pytest.mark.parametrize("op", OPS)
def test_after_release_the_token_is_lost(make_queue, op):
    q = make_queue()
    q.put("x", key="k")
    lease = q.get(block=False)
    q.release(lease)
    with pytest.raises(leaseq.LeaseLost) as info:
        _use(q, op, lease)
    assert info.value.reason == "released"
    assert drain(q) == ["x"]


@pytest.mark.parametrize("op", OPS)
def test_after_dead_letter_the_token_is_lost(make_queue, op):
    q = make_queue()
    q.put("x", key="k")
    lease = q.get(block=False)
    q.dead_letter(lease)
    with pytest.raises(leaseq.LeaseLost) as info:
        _use(q, op, lease)
    assert info.value.reason == "dead"
    assert len(q.dead_letters()) == 1


def test_lease_lost_names_the_queue(make_queue):
    q = make_queue(name="emails")
    q.put("x")
    lease = q.get(block=False)
    q.ack(lease)
    with pytest.raises(leaseq.LeaseLost) as info:
        q.ack(lease)
    assert info.value.queue == "emails"
    assert "emails" in str(info.value)


def test_extend_sets_expiry_to_now_plus_seconds_same_token(make_queue, clock):
    q = make_queue(lease_timeout=10)
    q.put("x", key="k")
    lease = q.get(block=False)
    clock.advance(8)
    renewed = q.extend(lease, 10)
    assert renewed.token == lease.token
    assert renewed.expires_at == clock() + 10
    assert (renewed.key, renewed.attempt, renewed.id) == ("k", 1, lease.id)
    assert renewed.message.lease_expires_at == renewed.expires_at
    assert q.peek("k").lease_expires_at == clock() + 10


def test_extend_before_expiry_keeps_the_lease_valid(make_queue, clock):
    q = make_queue(lease_timeout=10)
    q.put("x", key="k")
    lease = q.get(block=False)
    clock.advance(9)
    q.extend(lease, 10)
    clock.advance(9)  # past the original expiry, before the new one
    with pytest.raises(leaseq.Empty):
        q.take("k", block=False)
    q.ack(lease)  # the token still holds: the original Lease object works
    assert q.stats().total == 0


def test_repeated_heartbeats_hold_a_lease_indefinitely(make_queue, clock):
    q = make_queue(lease_timeout=5)
    q.put("x", key="k")
    lease = q.get(block=False)
    for _ in range(20):
        clock.advance(4)
        lease = q.extend(lease, 5)
    assert q.peek("k").attempts == 1
    q.ack(lease)


def test_extend_can_shorten_a_lease(make_queue, clock):
    q = make_queue(lease_timeout=60)
    q.put("x", key="k")
    lease = q.get(block=False)
    q.extend(lease, 1)
    clock.advance(1)
    again = q.get(block=False)
    assert (again.key, again.attempt) == ("k", 2)


def test_attempts_count_claims_including_releases(make_queue):
    q = make_queue()
    q.put("x", key="k")
    for attempt in (1, 2, 3):
        lease = q.get(block=False)
        assert lease.attempt == attempt
        assert lease.message.attempts == attempt
        released = q.release(lease)
        assert (released.state, released.attempts) == (State.READY, attempt)


def test_release_returns_the_ready_message_and_records_the_error(make_queue):
    q = make_queue()
    q.put("x", key="k")
    lease = q.get(block=False)
    msg = q.release(lease, error="smtp timeout")
    assert msg.state is State.READY
    assert msg.lease_expires_at is None
    assert "smtp timeout" in msg.last_error
    assert "smtp timeout" in q.peek("k").last_error


def test_release_accepts_an_exception_as_error(make_queue):
    q = make_queue()
    q.put("x", key="k")
    lease = q.get(block=False)
    msg = q.release(lease, error=ValueError("bad input"))
    assert "bad input" in msg.last_error


def test_max_attempts_on_release_goes_dead(make_queue):
    q = make_queue(max_attempts=2)
    q.put("x", key="k")
    q.release(q.get(block=False))
    last = q.get(block=False)
    assert last.attempt == 2
    dead = q.release(last)
    assert dead.state is State.DEAD
    assert dead.dead_reason == "max_attempts"
    assert "k" not in q
    assert drain(q) == []
    assert [(m.id, m.state) for m in q.dead_letters()] == [(last.id, State.DEAD)]


def test_max_attempts_on_release_keeps_the_callers_error(make_queue):
    q = make_queue(max_attempts=1)
    q.put("x", key="k")
    dead = q.release(q.get(block=False), error="boom")
    assert dead.state is State.DEAD
    assert dead.dead_reason == "max_attempts"
    assert "boom" in dead.last_error


def test_max_attempts_on_expiry_goes_dead_with_lease_expired(make_queue, clock):
    q = make_queue(max_attempts=2, lease_timeout=10)
    q.put("x", key="k")
    q.get(block=False)
    clock.advance(10)
    second = q.get(block=False)
    assert second.attempt == 2
    clock.advance(10)
    assert drain(q) == []
    assert q.peek("k") is None
    (dead,) = q.dead_letters()
    assert (dead.id, dead.state, dead.attempts) == (second.id, State.DEAD, 2)
    assert dead.dead_reason == "lease_expired"
    stats = q.stats()
    assert (stats.dead, stats.leased, stats.ready, stats.total) == (1, 0, 0, 1)


def test_message_under_max_attempts_is_redelivered(make_queue, clock):
    q = make_queue(max_attempts=3, lease_timeout=10)
    q.put("x", key="k")
    q.get(block=False)
    clock.advance(10)
    q.release(q.get(block=False))
    third = q.get(block=False)
    assert third.attempt == 3
    q.ack(third)
    assert q.dead_letters() == []


def test_dead_letter_moves_the_message_with_a_reason(make_queue):
    q = make_queue()
    q.put("x", key="k")
    lease = q.get(block=False)
    dead = q.dead_letter(lease, error="bad payload")
    assert (dead.id, dead.state, dead.value) == (lease.id, State.DEAD, "x")
    assert "bad payload" in dead.last_error
    assert "bad payload" in dead.dead_reason
    assert "k" not in q
    assert drain_keys(q) == []
    assert [m.id for m in q.dead_letters()] == [lease.id]


def test_owner_is_recorded_and_cleared(make_queue):
    q = make_queue()
    q.put("x", key="k")
    lease = q.get(block=False, owner="host-1:42")
    assert q.peek("k").leased_by == "host-1:42"
    q.release(lease)
    assert q.peek("k").leased_by is None


def test_a_lease_holds_only_in_its_own_queue(make_queue):
    jobs = make_queue(name="jobs")
    other = make_queue(name="other")
    jobs.put("x", key="k")
    other.put("y", key="k")
    lease = jobs.get(block=False)
    with pytest.raises(leaseq.LeaseLost):
        other.ack(lease)
    assert jobs.peek("k").state is State.LEASED
    assert other.peek("k").state is State.READY
    jobs.ack(lease)
