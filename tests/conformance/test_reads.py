"""Reads: peek, contains, ``in``, keys, qsize, empty/full, stats (DESIGN §4).

Reads take no lease and change nothing.
"""

from __future__ import annotations

import pytest

import leaseq
from leaseq import State
from leaseq._core.model import HISTORY_LIMIT

from .helpers import snapshot


def _populate(q, clock):
    """ready: r1, r2; delayed: d; leased: l (valid); expired: e (lease ran out); dead: x."""
    q.put("r1", key="r1")
    q.put("e", key="e")
    q.take("e", block=False, lease_timeout=5)
    q.put("r2", key="r2")
    q.put("d", key="d", delay=100)
    q.put("l", key="l")
    q.take("l", block=False, lease_timeout=60, owner="w1")
    q.put("x", key="x")
    q.dead_letter(q.take("x", block=False), error="bad")
    clock.advance(10)


KEYS = ["r1", "r2", "d", "l", "e", "x", "absent"]


def test_peek_returns_the_live_message_ready_or_leased(make_queue, clock):
    q = make_queue()
    _populate(q, clock)
    assert q.peek("r1").state is State.READY
    assert q.peek("d").state is State.READY
    assert q.peek("d").available_at > clock()
    held = q.peek("l")
    assert (held.state, held.leased_by, held.attempts) == (State.LEASED, "w1", 1)
    assert q.peek("e").state is State.READY  # its lease expired: logically ready
    assert q.peek("x") is None  # dead letters are addressed by id
    assert q.peek("absent") is None


def test_contains_and_in_cover_live_keys_only(make_queue, clock):
    q = make_queue()
    _populate(q, clock)
    for key in ["r1", "r2", "d", "l", "e"]:
        assert q.contains(key) and key in q
    for key in ["x", "absent"]:
        assert not q.contains(key) and key not in q


def test_keys_by_state(make_queue, clock):
    q = make_queue()
    _populate(q, clock)
    assert sorted(q.keys()) == ["d", "e", "r1", "r2"]  # READY includes delayed and expired
    assert sorted(q.keys(State.READY)) == ["d", "e", "r1", "r2"]
    assert q.keys(State.LEASED) == ["l"]


def test_qsize_counts_ready_and_due_only(make_queue, clock):
    q = make_queue()
    _populate(q, clock)
    assert q.qsize() == 3  # r1, r2 and the expired e
    assert not q.empty()
    clock.advance(100)  # d falls due, l expires
    assert q.qsize() == 5


def test_empty_and_full(make_queue):
    q = make_queue(maxsize=2)
    assert q.empty() and not q.full()
    q.put("a", key="a")
    assert not q.empty() and not q.full()
    q.put("b", key="b", delay=10)
    assert q.full()
    assert q.qsize() == 1
    q.take("a", block=False)
    assert q.empty()  # nothing claimable now
    assert q.full()  # leased and delayed messages still count toward maxsize


def test_full_is_false_without_maxsize(make_queue):
    q = make_queue()
    for i in range(50):
        q.put(i)
    assert not q.full()


def test_stats_fields(make_queue, clock):
    q = make_queue()
    _populate(q, clock)
    stats = q.stats()
    assert stats.ready == 3  # r1, r2, e; excludes the delayed d
    assert stats.delayed == 1
    assert stats.leased == 1
    assert stats.dead == 1
    assert stats.total == 6  # live and dead
    assert stats.by_owner == {"w1": 1}
    assert stats.oldest_ready_age == pytest.approx(10)  # r1, put 10 s ago
    assert stats.oldest_leased_age == pytest.approx(10)  # l, claimed 10 s ago
    assert stats.mean_leased_age == pytest.approx(10)  # the only lease


def test_mean_leased_age_averages_the_current_leases(make_queue, clock):
    q = make_queue()
    q.put_many(["a", "b", "c"])
    q.get(owner="w1")
    clock.advance(4)
    q.get(owner="w2")
    clock.advance(2)
    q.ack(q.get(owner="w2"))  # an acked lease no longer counts
    stats = q.stats()
    assert stats.leased == 2
    assert stats.mean_leased_age == pytest.approx((6 + 2) / 2)
    assert stats.oldest_leased_age == pytest.approx(6)


def test_stats_of_an_empty_queue(make_queue):
    stats = make_queue().stats()
    assert (stats.ready, stats.delayed, stats.leased, stats.dead, stats.total) == (0, 0, 0, 0, 0)
    assert stats.oldest_ready_age is None
    assert stats.oldest_leased_age is None
    assert stats.mean_leased_age is None
    assert stats.by_owner == {}


def test_stats_by_owner_counts_current_leases(make_queue):
    q = make_queue()
    for i in range(4):
        q.put(i, key=f"k{i}")
    q.get(block=False, owner="w1")
    q.get(block=False, owner="w1")
    lease = q.get(block=False, owner="w2")
    assert q.stats().by_owner == {"w1": 2, "w2": 1}
    q.ack(lease)
    assert q.stats().by_owner == {"w1": 2}


def test_reads_change_nothing(make_queue, clock):
    q = make_queue()
    _populate(q, clock)
    before = snapshot(q, KEYS)
    for _ in range(3):
        assert snapshot(q, KEYS) == before
    # Nothing was leased by reading: the expired e is on attempt 2, r1 on attempt 1.
    first = q.take("e", block=False)
    assert first.attempt == 2
    assert q.take("r1", block=False).attempt == 1


def test_reads_see_logical_expiry_without_changing_it(make_queue, clock):
    q = make_queue(lease_timeout=5)
    q.put("x", key="k")
    lease = q.get(block=False)
    clock.advance(5)
    assert q.peek("k").state is State.READY
    assert q.keys(State.LEASED) == []
    assert q.qsize() == 1
    assert q.stats().leased == 0
    assert q.get(block=False).attempt == 2
    assert lease.attempt == 1


def test_queues_with_different_names_are_separate(make_queue):
    a = make_queue(name="a")
    b = make_queue(name="b")
    a.put("x", key="k")
    assert "k" not in b
    assert b.qsize() == 0
    b.put("y", key="k")
    assert a.peek("k").value == "x"
    assert b.peek("k").value == "y"


def test_two_queue_objects_on_one_store_share_messages(make_queue):
    producer = make_queue()
    consumer = make_queue()
    producer.put("x", key="k")
    lease = consumer.get(block=False)
    assert lease.value == "x"
    producer.ack(lease)  # a lease is valid on any queue object of the same store
    assert consumer.stats().total == 0


def test_inspect_finds_live_and_dead_messages_by_id(make_queue, clock):
    q = make_queue(lease_timeout=10)
    ready = q.put("r", key="r")
    held = q.put("h", key="h")
    q.take("h", block=False)
    dead = q.put("d", key="d")
    q.dead_letter(q.take("d", block=False), error="bad")
    assert q.inspect(ready.id).state is State.READY
    assert q.inspect(held.id).state is State.LEASED
    assert q.inspect(dead.id).state is State.DEAD
    clock.advance(10)
    assert q.inspect(held.id).state is State.READY  # logical expiry


def test_inspect_of_an_unknown_or_acked_id_is_message_not_found(make_queue):
    q = make_queue()
    with pytest.raises(leaseq.MessageNotFound):
        q.inspect("no-such-id")
    q.put("x")
    lease = q.get(block=False)
    q.ack(lease)
    with pytest.raises(leaseq.MessageNotFound):
        q.inspect(lease.id)


def test_history_records_redeliveries_and_errors(make_queue, clock):
    q = make_queue(lease_timeout=10)
    q.put("x", key="k")
    q.release(q.get(block=False), error="smtp down")
    q.get(block=False)  # attempt 2: a redelivery is news
    clock.advance(10)
    history = q.peek("k").history
    kinds = [event.kind for event in history]
    assert "released" in kinds
    assert "claimed" in kinds
    assert "expired" in kinds
    released = next(e for e in history if e.kind == "released")
    assert "smtp down" in released.detail
    assert [e.at for e in history] == sorted(e.at for e in history)


def test_history_is_bounded(make_queue):
    q = make_queue()
    q.put("x", key="k")
    for _ in range(3 * HISTORY_LIMIT):
        q.release(q.get(block=False))
    history = q.peek("k").history
    assert len(history) == HISTORY_LIMIT  # the newest ones
    assert history[-1].kind == "released"


def test_closing_one_queue_leaves_others_on_the_store_working(make_queue):
    first = make_queue()
    second = make_queue()
    first.put("a", key="a")
    first.close()
    with pytest.raises(leaseq.Closed):
        first.put("b")
    second.put("b", key="b")
    third = make_queue()  # opened after the close: still the same store
    assert sorted(third.keys()) == ["a", "b"]


def test_history_records_news_only(make_queue, clock):
    # DESIGN §11: the ordinary put and first claim are not news (created_at and
    # attempts tell them); releases, redeliveries and expiries are.
    q = make_queue(lease_timeout=10)
    assert q.put("x", key="k").history == ()
    lease = q.get(block=False)
    assert lease.message.history == ()
    assert q.peek("k").history == ()
    q.release(lease, error="boom")
    assert [e.kind for e in q.peek("k").history] == ["released"]
    lease = q.get(block=False)
    assert [e.kind for e in lease.message.history] == ["released", "claimed"]
    clock.advance(10)
    assert [e.kind for e in q.peek("k").history] == ["released", "claimed", "expired"]
