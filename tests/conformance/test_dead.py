"""Dead letters: list, requeue, prune, purge (DESIGN §2, §4)."""

from __future__ import annotations

import pytest

import leaseq
from leaseq import State

from .helpers import drain


def _kill(q, value, key, error="bad"):
    q.put(value, key=key)
    lease = q.take(key, block=False)
    return q.dead_letter(lease, error=error)


def test_dead_letters_oldest_death_first(make_queue, clock):
    q = make_queue()
    a = _kill(q, "a", "a")
    clock.advance(1)
    b = _kill(q, "b", "b")
    clock.advance(1)
    c = _kill(q, "c", "c")
    assert [m.id for m in q.dead_letters()] == [a.id, b.id, c.id]
    assert [m.id for m in q.dead_letters(limit=2)] == [a.id, b.id]
    assert all(m.state is State.DEAD for m in q.dead_letters())


def test_dead_letters_keep_value_attempts_and_error(make_queue):
    q = make_queue()
    q.put({"n": 1}, key="k")
    q.release(q.get(block=False))
    q.dead_letter(q.get(block=False), error="bad payload")
    (dead,) = q.dead_letters()
    assert (dead.key, dead.value, dead.attempts) == ("k", {"n": 1}, 2)
    assert "bad payload" in dead.last_error


def test_requeue_dead_puts_it_back_with_attempts_reset(make_queue):
    q = make_queue()
    dead = _kill(q, "x", "k")
    msg = q.requeue_dead(dead.id)
    assert (msg.id, msg.key, msg.state, msg.attempts) == (dead.id, "k", State.READY, 0)
    assert q.dead_letters() == []
    assert "k" in q
    lease = q.get(block=False)
    assert (lease.id, lease.value, lease.attempt) == (dead.id, "x", 1)


def test_requeue_dead_can_keep_the_attempts(make_queue):
    q = make_queue()
    q.put("x", key="k")
    q.release(q.get(block=False))
    dead = q.dead_letter(q.get(block=False))
    assert dead.attempts == 2
    assert q.requeue_dead(dead.id, reset_attempts=False).attempts == 2
    assert q.get(block=False).attempt == 3


def test_requeue_dead_accepts_the_message(make_queue):
    q = make_queue()
    dead = _kill(q, "x", "k")
    assert q.requeue_dead(dead).id == dead.id
    assert drain(q) == ["x"]


def test_requeued_message_joins_the_back_of_the_line(make_queue, clock):
    q = make_queue()
    dead = _kill(q, "x", "x")
    q.put("y", key="y")
    clock.advance(1)
    q.requeue_dead(dead.id)
    assert drain(q) == ["y", "x"]


def test_requeue_dead_with_delay(make_queue, clock):
    q = make_queue()
    dead = _kill(q, "x", "k")
    msg = q.requeue_dead(dead.id, delay=5)
    assert msg.available_at == clock() + 5
    assert drain(q) == []
    clock.advance(5)
    assert drain(q) == ["x"]


def test_requeue_dead_gives_max_attempts_a_fresh_budget(make_queue, clock):
    q = make_queue(max_attempts=1, lease_timeout=10)
    q.put("x", key="k")
    q.get(block=False)
    clock.advance(10)
    (dead,) = q.dead_letters()
    q.requeue_dead(dead.id)
    lease = q.get(block=False)
    assert lease.attempt == 1
    q.ack(lease)
    assert q.stats().total == 0


def test_requeue_dead_of_an_unknown_id_is_message_not_found(make_queue):
    q = make_queue()
    with pytest.raises(leaseq.MessageNotFound):
        q.requeue_dead("no-such-id")


def test_requeue_dead_of_a_live_message_is_message_not_found(make_queue):
    q = make_queue()
    msg = q.put("x", key="k")
    with pytest.raises(leaseq.MessageNotFound):
        q.requeue_dead(msg.id)
    lease = q.get(block=False)
    with pytest.raises(leaseq.MessageNotFound):
        q.requeue_dead(lease.id)
    q.ack(lease)
    with pytest.raises(leaseq.MessageNotFound):
        q.requeue_dead(lease.id)  # acked: gone


def test_requeue_dead_twice_is_message_not_found(make_queue):
    q = make_queue()
    dead = _kill(q, "x", "k")
    q.requeue_dead(dead.id)
    with pytest.raises(leaseq.MessageNotFound):
        q.requeue_dead(dead.id)


def test_prune_dead_removes_only_old_enough_letters(make_queue, clock):
    q = make_queue()
    old = _kill(q, "old", "old")
    clock.advance(6)
    young = _kill(q, "young", "young")
    clock.advance(6)  # old died 12 s ago, young 6 s ago
    assert q.prune_dead(older_than=10) == 1
    assert [m.id for m in q.dead_letters()] == [young.id]
    with pytest.raises(leaseq.MessageNotFound):
        q.requeue_dead(old.id)
    assert q.prune_dead(older_than=10) == 0
    assert q.prune_dead(older_than=0) == 1
    assert q.dead_letters() == []
    assert q.stats().total == 0


def test_prune_dead_includes_letters_exactly_old_enough(make_queue, clock):
    q = make_queue()
    _kill(q, "x", "x")
    clock.advance(10)
    assert q.prune_dead(older_than=10.5) == 0
    assert q.prune_dead(older_than=10) == 1


def test_prune_dead_leaves_live_messages(make_queue, clock):
    q = make_queue()
    q.put("live", key="live")
    q.put("held", key="held")
    q.take("held", block=False, lease_timeout=1000)
    _kill(q, "dead", "dead")
    clock.advance(100)
    assert q.prune_dead(older_than=1) == 1
    stats = q.stats()
    assert (stats.ready, stats.leased, stats.dead) == (1, 1, 0)


def test_purge_removes_everything_and_counts_it(make_queue):
    q = make_queue()
    q.put("a", key="a")
    q.put("b", key="b", delay=10)
    q.put("c", key="c")
    q.take("c", block=False)
    _kill(q, "d", "d")
    assert q.purge() == 4
    stats = q.stats()
    assert (stats.ready, stats.delayed, stats.leased, stats.dead, stats.total) == (0, 0, 0, 0, 0)
    assert q.keys() == []
    assert q.purge() == 0


def test_purge_makes_old_leases_lost(make_queue):
    q = make_queue()
    q.put("a", key="a")
    lease = q.get(block=False)
    q.purge()
    with pytest.raises(leaseq.LeaseLost):
        q.ack(lease)
