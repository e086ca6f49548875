"""The same contract through ``AsyncQueue`` (DESIGN §4: same names, awaited).

The sync suite covers every rule; these tests prove the async face reaches
the same store behaviour and waits without blocking, on every store.
"""

from __future__ import annotations

import asyncio
import queue
import time

import pytest

import leaseq
from leaseq import State


async def _drain(q):
    values = []
    while True:
        try:
            lease = await q.get(block=False)
        except leaseq.Empty:
            return values
        values.append(lease.value)
        await q.ack(lease)


async def _blocked(coro):
    task = asyncio.create_task(coro)
    await asyncio.sleep(0.02)
    assert not task.done(), "expected the call to wait"
    return task


async def test_put_get_ack(make_async_queue, clock):
    q = make_async_queue(lease_timeout=10)
    msg = await q.put({"to": "a@b"}, key="user-42", priority=2)
    assert (msg.key, msg.state, msg.priority) == ("user-42", State.READY, 2)
    lease = await q.get(block=False, owner="w1")
    assert (lease.key, lease.value, lease.attempt) == ("user-42", {"to": "a@b"}, 1)
    assert lease.expires_at == clock() + 10
    assert (await q.peek("user-42")).state is State.LEASED
    await q.ack(lease)
    assert not await q.contains("user-42")
    assert (await q.stats()).total == 0


async def test_order_priority_and_delay(make_async_queue, clock):
    q = make_async_queue()
    await q.put("later", delay=5)
    await q.put("low", priority=1)
    clock.advance(0.002)
    await q.put("high", priority=10)
    assert await _drain(q) == ["high", "low"]
    clock.advance(5)
    assert await _drain(q) == ["later"]


async def test_delay_and_at_together_are_a_value_error(make_async_queue, clock):
    q = make_async_queue()
    with pytest.raises(ValueError):
        await q.put("x", delay=1, at=clock() + 1)


async def test_key_policies(make_async_queue):
    q = make_async_queue()
    await q.put("v1", key="k")
    with pytest.raises(leaseq.KeyExists):
        await q.put("v2", key="k", if_ready="reject")
    lease = await q.get(block=False)
    with pytest.raises(leaseq.KeyInFlight):
        await q.put("v2", key="k", if_in_flight="reject")
    await q.put("v3", key="k", if_in_flight="buffer")
    with pytest.raises(leaseq.Empty):
        await q.take("k", block=False)
    await q.ack(lease)
    assert await _drain(q) == ["v3"]


async def test_release_extend_dead_letter_and_fencing(make_async_queue, clock):
    q = make_async_queue(lease_timeout=10, max_attempts=3)
    await q.put("x", key="k")
    lease = await q.get(block=False)
    released = await q.release(lease, front=True, error="boom")
    assert released.state is State.READY and "boom" in released.last_error
    with pytest.raises(leaseq.LeaseLost) as info:
        await q.ack(lease)
    assert info.value.reason == "released"
    lease = await q.take("k", block=False)
    assert lease.attempt == 2
    clock.advance(9)
    lease = await q.extend(lease, 10)
    assert lease.expires_at == clock() + 10
    clock.advance(9)
    dead = await q.dead_letter(lease, error="bad payload")
    assert dead.state is State.DEAD
    assert [m.id for m in await q.dead_letters()] == [lease.id]
    requeued = await q.requeue_dead(lease.id)
    assert requeued.attempts == 0
    with pytest.raises(leaseq.MessageNotFound):
        await q.requeue_dead("no-such-id")
    clock.advance(1)
    assert await q.prune_dead(older_than=0) == 0
    assert await q.purge() == 1


async def test_expired_token_is_lost(make_async_queue, clock):
    q = make_async_queue(lease_timeout=10)
    await q.put("x", key="k")
    lease = await q.get(block=False)
    clock.advance(10)
    for op in (q.ack, q.release, q.dead_letter):
        with pytest.raises(leaseq.LeaseLost) as info:
            await op(lease)
        assert info.value.reason == "expired"
    with pytest.raises(leaseq.LeaseLost):
        await q.extend(lease, 5)
    assert (await q.get(block=False)).attempt == 2


async def test_reads(make_async_queue, clock):
    q = make_async_queue(maxsize=3)
    await q.put("a", key="a")
    await q.put("d", key="d", delay=10)
    await q.take("a", block=False, owner="w")
    assert await q.keys() == ["d"]
    assert await q.keys(State.LEASED) == ["a"]
    assert await q.qsize() == 0
    assert await q.empty()
    assert not await q.full()
    stats = await q.stats()
    assert (stats.ready, stats.delayed, stats.leased, stats.total) == (0, 1, 1, 2)
    assert stats.by_owner == {"w": 1}


async def test_get_timeout_raises_empty(make_async_queue):
    q = make_async_queue()
    start = time.monotonic()
    with pytest.raises(leaseq.Empty):
        await q.get(timeout=0.1)
    assert 0.09 <= time.monotonic() - start < 1.0
    with pytest.raises(queue.Empty):
        await q.take("k", timeout=0)


async def test_blocked_get_wakes_on_put(make_async_queue):
    q = make_async_queue()
    task = await _blocked(q.get(timeout=10))
    await q.put("x")
    assert (await asyncio.wait_for(task, 2)).value == "x"


async def test_blocked_take_wakes_only_for_its_key(make_async_queue):
    q = make_async_queue()
    task = await _blocked(q.take("k", timeout=10))
    await q.put("other", key="other")
    await asyncio.sleep(0.02)
    assert not task.done()
    await q.put("mine", key="k")
    assert (await asyncio.wait_for(task, 2)).value == "mine"


async def test_blocked_take_wakes_on_release(make_async_queue):
    q = make_async_queue()
    await q.put("x", key="k")
    lease = await q.get(block=False)
    task = await _blocked(q.take("k", timeout=10))
    await q.release(lease)
    assert (await asyncio.wait_for(task, 2)).attempt == 2


async def test_blocked_take_wakes_on_expiry_when_the_clock_advances(make_async_queue, clock):
    q = make_async_queue(lease_timeout=10)
    await q.put("x", key="k")
    await q.get(block=False)
    task = await _blocked(q.take("k", timeout=10))
    clock.advance(10)
    assert (await asyncio.wait_for(task, 2)).attempt == 2


async def test_blocked_get_wakes_when_a_delayed_message_falls_due(make_async_queue, clock):
    q = make_async_queue()
    await q.put("x", delay=60)
    task = await _blocked(q.get(timeout=10))
    clock.advance(60)
    assert (await asyncio.wait_for(task, 2)).value == "x"


async def test_timeout_is_a_total_deadline_across_wake_ups(make_async_queue):
    q = make_async_queue()
    stop = asyncio.Event()

    async def nag():
        delay = 10_000.0
        while not stop.is_set():
            delay -= 0.5
            await q.put("x", delay=delay)
            await asyncio.sleep(0.001)

    helper = asyncio.create_task(nag())
    start = time.monotonic()
    with pytest.raises(leaseq.Empty):
        await q.get(timeout=0.2)
    elapsed = time.monotonic() - start
    stop.set()
    await helper
    assert 0.19 <= elapsed < 0.6


async def test_maxsize_block_and_reject(make_async_queue):
    q = make_async_queue(maxsize=1)
    await q.put("a")
    with pytest.raises(leaseq.Full):
        await q.put("b", block=False)
    task = await _blocked(q.put("b", timeout=10))
    await q.ack(await q.get(block=False))
    assert (await asyncio.wait_for(task, 2)).value == "b"
    r = make_async_queue(name="r", maxsize=1, overflow="reject")
    await r.put("a")
    with pytest.raises(queue.Full):
        await r.put("b")


async def test_put_many_and_get_many(make_async_queue):
    q = make_async_queue()
    with pytest.raises(ValueError):
        await q.put_many(["a", ("b", {"priority": 5000})])
    assert (await q.stats()).total == 0
    await q.put_many(["a", ("b", {"key": "b"}), "c"])
    leases = await q.get_many(2)
    assert [lease.value for lease in leases] == ["a", "b"]
    assert await q.get_many(5, block=False) != []


async def test_lease_context_acks_or_releases(make_async_queue):
    q = make_async_queue()
    await q.put("ok", key="ok")
    await q.put("bad", key="bad")
    async with q.lease(timeout=1) as job:
        assert job.value == "ok"
    assert not await q.contains("ok")
    with pytest.raises(RuntimeError):
        async with q.lease(timeout=1) as job:
            raise RuntimeError("handler failed")
    msg = await q.peek("bad")
    assert (msg.state, msg.attempts) == (State.READY, 1)
    assert "handler failed" in msg.last_error


async def test_sync_and_async_faces_share_a_store(make_queue, make_async_queue):
    sync_q = make_queue()
    async_q = make_async_queue()
    sync_q.put("from sync", key="k")
    lease = await async_q.get(block=False)
    assert lease.value == "from sync"
    sync_q.ack(lease)
    assert (await async_q.stats()).total == 0


async def test_waiting_never_blocks_the_event_loop(make_async_queue, clock):
    q = make_async_queue(maxsize=1)
    await q.put("held", key="held")
    lease = await q.get(block=False)
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker():
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    waits = [
        q.get(timeout=0.2),
        q.take("held", timeout=0.2),
        q.take("absent", timeout=0.2),
        q.get_many(3, timeout=0.2),
    ]
    for result in await asyncio.gather(*waits, return_exceptions=True):
        assert isinstance(result, leaseq.Empty)
    with pytest.raises(leaseq.Full):
        await q.put("more", timeout=0.2)
    stop.set()
    await tick
    await q.ack(lease)
    assert len(gaps) > 20
    # A wait run on the loop would stall it for its whole 0.2 s timeout; below that,
    # a loaded machine can deschedule the process for a while (no flake at 0.1 s).
    assert max(gaps) < 0.15


async def test_a_burst_of_puts_serves_every_blocked_task(make_async_queue):
    consumer = make_async_queue()
    producer = make_async_queue()  # a second queue object: its own store thread if any
    tasks = [asyncio.create_task(consumer.get(timeout=10)) for _ in range(30)]
    await asyncio.sleep(0.1)
    for i in range(30):
        await producer.put(i)
    done, pending = await asyncio.wait(tasks, timeout=2)
    for task in pending:
        task.cancel()
    assert (len(pending), await producer.qsize()) == (0, 0)
    assert sorted(t.result().value for t in done) == list(range(30))


async def test_one_put_many_from_another_queue_object_serves_every_blocked_task(
    make_async_queue,
):
    # One transaction makes 30 messages claimable; for a durable store the
    # consumer hears of it only as "the store changed": all 30 must still wake.
    consumer = make_async_queue()
    producer = make_async_queue()
    tasks = [asyncio.create_task(consumer.get(timeout=10)) for _ in range(30)]
    await asyncio.sleep(0.1)
    await producer.put_many(list(range(30)))
    done, pending = await asyncio.wait(tasks, timeout=2)
    for task in pending:
        task.cancel()
    assert (len(pending), await producer.qsize()) == (0, 0)
    assert sorted(t.result().value for t in done) == list(range(30))
