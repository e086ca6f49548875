"""``maxsize``: counts live messages (ready, delayed, leased); block or reject (DESIGN §4)."""

from __future__ import annotations

import queue
import time

import pytest

import leaseq

from .helpers import blocked, drain


def test_reject_raises_full_also_a_queue_full(make_queue):
    q = make_queue(maxsize=2, overflow="reject")
    q.put("a")
    q.put("b")
    with pytest.raises(leaseq.Full):
        q.put("c")
    with pytest.raises(queue.Full):
        q.put("c")
    assert q.stats().total == 2


def test_reject_never_waits(make_queue):
    q = make_queue(maxsize=1, overflow="reject")
    q.put("a")
    start = time.monotonic()
    with pytest.raises(leaseq.Full):
        q.put("b", timeout=5)
    assert time.monotonic() - start < 0.5


def test_delayed_and_leased_messages_count(make_queue):
    q = make_queue(maxsize=2, overflow="reject")
    q.put("held", key="held")
    q.take("held", block=False)
    q.put("later", key="later", delay=60)
    with pytest.raises(leaseq.Full):
        q.put("c")


def test_dead_letters_do_not_count(make_queue):
    q = make_queue(maxsize=1, overflow="reject")
    q.put("a", key="a")
    q.dead_letter(q.get(block=False))
    q.put("b", key="b")
    assert q.stats().total == 2


def test_release_does_not_free_space(make_queue):
    q = make_queue(maxsize=1, overflow="reject")
    q.put("a")
    q.release(q.get(block=False))
    with pytest.raises(leaseq.Full):
        q.put("b")


def test_ack_frees_space(make_queue):
    q = make_queue(maxsize=1, overflow="reject")
    q.put("a")
    q.ack(q.get(block=False))
    q.put("b")
    assert drain(q) == ["b"]


def test_a_put_that_updates_a_live_key_is_not_new(make_queue):
    q = make_queue(maxsize=1, overflow="reject")
    q.put("v1", key="k")
    q.put("v2", key="k")
    q.put("v3", key="k", if_ready="keep")
    lease = q.get(block=False)
    q.put("v4", key="k")  # in-flight update
    q.put("v5", key="k", if_in_flight="keep")
    q.release(lease)
    assert drain(q) == ["v4"]


def test_block_without_blocking_raises_full(make_queue):
    q = make_queue(maxsize=1)
    q.put("a")
    with pytest.raises(leaseq.Full):
        q.put("b", block=False)


def test_block_with_timeout_raises_full_after_the_deadline(make_queue):
    q = make_queue(maxsize=1)
    q.put("a")
    start = time.monotonic()
    with pytest.raises(leaseq.Full):
        q.put("b", timeout=0.1)
    assert 0.09 <= time.monotonic() - start < 1.0
    assert q.stats().total == 1


def test_blocked_put_waits_until_an_ack_frees_space(make_queue):
    q = make_queue(maxsize=1)
    q.put("a")
    lease = q.get(block=False)
    call = blocked(q.put, "b", timeout=10)
    q.release(lease)  # still live: no space
    call.assert_blocked()
    q.ack(q.get(block=False))
    assert call.join().value == "b"
    assert drain(q) == ["b"]


def test_blocked_put_waits_until_a_dead_letter_frees_space(make_queue):
    q = make_queue(maxsize=1)
    q.put("a")
    call = blocked(q.put, "b", timeout=10)
    q.dead_letter(q.get(block=False))
    assert call.join().value == "b"


def test_blocked_put_waits_until_a_purge_frees_space(make_queue):
    q = make_queue(maxsize=2)
    q.put("a")
    q.put("b")
    call = blocked(q.put, "c", timeout=10)
    q.purge()
    assert call.join().value == "c"


def test_blocked_put_waits_until_an_expiry_to_dead_frees_space(make_queue, clock):
    q = make_queue(maxsize=1, max_attempts=1, lease_timeout=10)
    q.put("a")
    q.get(block=False)
    call = blocked(q.put, "b", timeout=10)
    clock.advance(10)  # the last attempt expires: the message goes DEAD
    assert call.join().value == "b"


def test_put_many_that_does_not_fit_stores_nothing(make_queue):
    q = make_queue(maxsize=3, overflow="reject")
    q.put("a")
    q.put("b")
    with pytest.raises(leaseq.Full):
        q.put_many(["c", "d"])
    assert q.stats().total == 2
    q.put_many(["c"])
    assert q.stats().total == 3
