"""A buffered follow-up outlives the held message's death: it becomes a fresh message."""

from __future__ import annotations

import leaseq


def _held_with_follow_up(q):
    q.put("v1", key="k")
    lease = q.get(block=False)
    q.put("v2", key="k", if_in_flight="buffer")
    return lease


def _assert_follow_up_ready(q, dead_id):
    msg = q.peek("k")
    assert msg is not None and msg.state is leaseq.State.READY
    assert msg.value == "v2" and msg.attempts == 0 and msg.id != dead_id
    dead = q.dead_letters()
    assert [(m.id, m.value) for m in dead] == [(dead_id, "v1")]
    lease = q.get(block=False)
    assert lease.value == "v2"


def test_dead_letter_keeps_the_follow_up(make_queue):
    q = make_queue()
    lease = _held_with_follow_up(q)
    q.dead_letter(lease, error="bad")
    _assert_follow_up_ready(q, lease.id)


def test_release_on_last_attempt_keeps_the_follow_up(make_queue):
    q = make_queue(max_attempts=1)
    lease = _held_with_follow_up(q)
    dead = q.release(lease, error="boom")
    assert dead.state is leaseq.State.DEAD
    _assert_follow_up_ready(q, lease.id)


def test_expiry_on_last_attempt_keeps_the_follow_up(make_queue, clock):
    q = make_queue(max_attempts=1, lease_timeout=5)
    lease = _held_with_follow_up(q)
    clock.advance(6)
    _assert_follow_up_ready(q, lease.id)


def test_a_waiting_consumer_gets_the_follow_up(make_queue):
    q = make_queue()
    lease = _held_with_follow_up(q)
    q.dead_letter(lease)
    assert q.get(timeout=5).value == "v2"
