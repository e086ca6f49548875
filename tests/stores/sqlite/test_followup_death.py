"""A buffered follow-up outlives the message it waited behind (sqlite://).

When the held message dies (release or expiry on its last attempt,
``dead_letter``) its buffered follow-up becomes a fresh READY message of the key:
the id the buffered put returned, the buffered value, attempts 0. Expiry is
logical, so every read must show that before any write applied it, and the
reads must agree with what a later write stores.
"""

from __future__ import annotations

import pytest

from leaseq._core.model import State
from leaseq.stores.base import PutRequest
from leaseq.stores.sqlite import SQLiteStore

T0 = 1_700_000_000.0
Q = "jobs"


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(str(tmp_path / "q.db"))
    yield s
    s.close()


def _held_with_followup(store, *, max_attempts=1, delay=0.0, priority=0):
    store.put(Q, PutRequest("v1", "k", max_attempts=max_attempts), now=T0)
    (lease,) = store.claim(Q, now=T0, lease_timeout=10, owner="w")
    follow = store.put(
        Q,
        PutRequest("v2", "k", priority=priority, delay=delay, if_in_flight="buffer"),
        now=T0 + 1,
    )
    return lease, follow


def _reads(store, now):
    """Everything a reader can see of the queue at ``now``."""
    peek = store.peek_key(Q, "k", now=now)
    stats = store.stats(Q, now=now)
    return {
        "peek": None
        if peek is None
        else (peek.value, peek.state, peek.attempts, peek.available_at),
        "ready": store.keys(Q, State.READY, now=now),
        "dead": [(m.key, m.value) for m in store.dead_letters(Q, now=now)],
        "count_ready": store.count_ready(Q, now=now),
        "count_live": store.count_live(Q, now=now),
        "stats": (stats.ready, stats.delayed, stats.leased, stats.dead, stats.total),
    }


def test_release_on_the_last_attempt_leaves_the_followup_ready(store):
    lease, follow = _held_with_followup(store)
    dead = store.release(Q, lease, now=T0 + 2, error="boom")
    assert dead.state is State.DEAD and dead.value == "v1"
    msg = store.peek_key(Q, "k", now=T0 + 2)
    assert msg is not None
    assert (msg.id, msg.value, msg.state, msg.attempts) == (follow.id, "v2", State.READY, 0)
    assert msg.id != dead.id
    (again,) = store.claim(Q, now=T0 + 3, lease_timeout=10, owner="w")
    assert (again.value, again.attempt, again.id) == ("v2", 1, follow.id)
    assert [m.value for m in store.dead_letters(Q, now=T0 + 3)] == ["v1"]


def test_dead_letter_leaves_the_followup_ready(store):
    lease, follow = _held_with_followup(store, max_attempts=5)
    store.dead_letter(Q, lease, now=T0 + 2, error="poison")
    got = store.get_message(Q, follow.id, now=T0 + 2)
    assert got is not None and (got.value, got.state, got.attempts) == ("v2", State.READY, 0)
    assert store.count_live(Q, now=T0 + 2) == 1
    assert store.keys(Q, State.DEAD, now=T0 + 2) == ["k"]


def test_a_plain_release_still_redelivers_the_buffered_value_in_place(store):
    lease, _follow = _held_with_followup(store, max_attempts=3)
    back = store.release(Q, lease, now=T0 + 2)
    assert (back.id, back.value, back.attempts) == (lease.id, "v2", 1)
    assert store.dead_letters(Q, now=T0 + 2) == []


def test_expiry_on_the_last_attempt_is_seen_by_every_read_before_any_write(store):
    _lease, follow = _held_with_followup(store)
    later = T0 + 20  # the lease ran out at T0 + 10
    before = _reads(store, later)
    assert before["peek"] == ("v2", State.READY, 0, T0 + 10)
    assert store.peek_key(Q, "k", now=later).id == follow.id
    assert before["ready"] == ["k"]
    assert before["dead"] == [("k", "v1")]
    assert before["count_ready"] == 1 and before["count_live"] == 1
    assert before["stats"] == (1, 0, 0, 1, 2)
    msg = store.get_message(Q, follow.id, now=later)
    assert msg is not None and msg.value == "v2"
    # A write applies the expiry; the reads must not change.
    store.put(Q, PutRequest("other", "o"), now=later)
    store.purge("unrelated")
    (first,) = store.claim(Q, now=later, lease_timeout=10, owner="w")
    assert (first.key, first.value, first.id, first.attempt) == ("k", "v2", follow.id, 1)


def test_logical_and_written_expiry_agree(tmp_path):
    # Two identical databases: one only read, one written by a claim at the same time.
    stores = [SQLiteStore(str(tmp_path / f"{i}.db")) for i in range(2)]
    try:
        follows = [_held_with_followup(s, delay=5.0)[1] for s in stores]
        later = T0 + 12  # expired at T0 + 10; the follow-up is due at T0 + 15
        assert stores[1].claim(Q, now=later, lease_timeout=10, owner="w") == []
        reads = [_reads(s, later) for s in stores]
        assert reads[0] == reads[1]
        assert reads[0]["peek"] == ("v2", State.READY, 0, T0 + 15)
        assert [s.peek_key(Q, "k", now=later).id for s in stores] == [f.id for f in follows]
        assert reads[0]["stats"] == (0, 1, 0, 1, 2)
        assert stores[0].next_due(Q, now=later) is not None
        due = [_reads(s, T0 + 15) for s in stores]
        assert due[0] == due[1] and due[0]["count_ready"] == 1
    finally:
        for s in stores:
            s.close()


def test_a_put_on_a_key_whose_holder_expired_for_good_meets_the_followup(store):
    _lease, follow = _held_with_followup(store)
    got = store.put(Q, PutRequest("v3", "k", if_ready="keep"), now=T0 + 20)
    assert (got.id, got.value) == (follow.id, "v2")
    updated = store.put(Q, PutRequest("v4", "k"), now=T0 + 20)
    assert (updated.id, updated.value) == (follow.id, "v4")
    assert store.count_live(Q, now=T0 + 20) == 1


def test_the_followup_keeps_its_own_priority_and_delay(store):
    lease, _follow = _held_with_followup(store, delay=30.0, priority=7)
    store.release(Q, lease, now=T0 + 2)
    msg = store.peek_key(Q, "k", now=T0 + 2)
    assert msg is not None and (msg.priority, msg.available_at) == (7, T0 + 32)
    assert store.claim(Q, now=T0 + 31, lease_timeout=10, owner="w") == []
    (lease2,) = store.claim(Q, now=T0 + 32, lease_timeout=10, owner="w")
    assert lease2.value == "v2"
