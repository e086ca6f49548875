"""The results ledger: ack(result=) / dead_letter(record=True) settle a key atomically."""

from __future__ import annotations

import threading

import pytest

import leaseq


def test_ack_with_result_records_the_outcome(make_queue):
    q = make_queue(name="jobs")
    q.put({"n": 1}, key="k")
    lease = q.get(block=False)
    q.ack(lease, result={"sum": 3})
    assert q.result("k", timeout=0) == {"sum": 3}
    outcome = q.outcome("k")
    assert outcome is not None
    assert outcome.succeeded and outcome.key == "k" and outcome.error is None
    assert q.peek("k") is None  # acked: the message is gone


def test_result_none_is_a_result(make_queue):
    q = make_queue()
    q.put(1, key="k")
    q.ack(q.get(block=False), result=None)
    assert q.result("k", block=False) is None


def test_plain_ack_records_nothing(make_queue):
    q = make_queue()
    q.put(1, key="k")
    q.ack(q.get(block=False))
    assert q.outcome("k") is None
    with pytest.raises(leaseq.Empty):
        q.result("k", block=False)


def test_result_of_a_keyless_message_is_under_its_id(make_queue):
    q = make_queue()
    msg = q.put("x")
    q.ack(q.get(block=False), result="done")
    assert q.result(msg.key, block=False) == "done"
    assert msg.key == msg.id


def test_stale_lease_records_nothing(make_queue, clock):
    q = make_queue(lease_timeout=5)
    q.put(1, key="k")
    lease = q.get(block=False)
    clock.advance(6)
    with pytest.raises(leaseq.LeaseLost):
        q.ack(lease, result="late")
    assert q.outcome("k") is None
    assert q.peek("k") is not None


def test_dead_letter_with_record_makes_result_raise(make_queue):
    q = make_queue()
    q.put(1, key="k")
    q.dead_letter(q.get(block=False), error="bad input", record=True)
    with pytest.raises(leaseq.DeadLettered) as info:
        q.result("k", block=False)
    assert info.value.key == "k"
    assert "bad input" in str(info.value)
    assert q.outcome("k").status == "failed"


def test_a_later_outcome_replaces_the_older_one(make_queue):
    q = make_queue()
    q.put(1, key="k")
    q.dead_letter(q.get(block=False), error="first", record=True)
    q.put(2, key="k")
    q.ack(q.get(block=False), result="second")
    assert q.result("k", block=False) == "second"


def test_outcomes_expire_after_result_ttl_and_prune(make_queue, clock):
    q = make_queue(result_ttl=10)
    for key in ("a", "b"):
        q.put(key, key=key)
        q.ack(q.get(block=False), result=key)
    clock.advance(5)
    q.put("c", key="c")
    q.ack(q.get(block=False), result="c")
    clock.advance(6)  # a and b are 11 s old, c is 6 s old
    assert q.outcome("a") is None
    assert q.result("c", block=False) == "c"
    assert q.prune_results() == 2
    assert q.prune_results() == 0
    assert q.result("c", block=False) == "c"


def test_purge_leaves_the_ledger(make_queue):
    q = make_queue()
    q.put(1, key="k")
    q.ack(q.get(block=False), result=7)
    q.put(2, key="other")
    assert q.purge() == 1
    assert q.result("k", block=False) == 7


def test_ledgers_are_per_queue(make_queue):
    a = make_queue(name="a")
    b = make_queue(name="b")
    a.put(1, key="k")
    a.ack(a.get(block=False), result="from a")
    assert b.outcome("k") is None
    assert a.result("k", block=False) == "from a"


def test_another_queue_object_sees_the_outcome(make_queue):
    q1 = make_queue(name="jobs")
    q1.put(1, key="k")
    q1.ack(q1.get(block=False), result=[1, 2])
    other = make_queue(name="jobs")
    assert other.result("k", block=False) == [1, 2]


def test_result_waits_for_an_ack_from_another_thread(make_queue):
    q = make_queue()
    q.put("work", key="k")
    lease = q.get(block=False)
    timer = threading.Timer(0.05, lambda: q.ack(lease, result="done"))
    timer.start()
    try:
        assert q.result("k", timeout=10) == "done"
    finally:
        timer.join()


def test_result_times_out_with_empty(make_queue):
    q = make_queue()
    with pytest.raises(leaseq.Empty):
        q.result("missing", timeout=0.05)


def test_result_rejects_a_non_str_key(make_queue):
    q = make_queue()
    with pytest.raises(TypeError):
        q.result(42, block=False)  # type: ignore[arg-type]


def test_bad_result_ttl_is_rejected(store_url):
    with pytest.raises(ValueError):
        leaseq.Queue(store_url, result_ttl=0)


async def test_async_result_waits_for_the_ack(make_async_queue):
    import asyncio

    q = make_async_queue()
    await q.put("work", key="k")
    lease = await q.get(block=False)

    async def later() -> None:
        await asyncio.sleep(0.05)
        await q.ack(lease, result={"ok": True})

    task = asyncio.create_task(later())
    assert await q.result("k", timeout=10) == {"ok": True}
    await task
