"""leaseq.compat.leasedkeyq keeps leasedkeyq's documented behaviour, without its bugs."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from leaseq.compat.leasedkeyq import (
    InvalidLeaseError,
    KeyAlreadyInFlightError,
    LeaseAlreadyAcknowledgedError,
    LeasedKeyQueue,
    QueueClosedError,
)


async def test_quick_start_round_trip() -> None:
    async with LeasedKeyQueue[str, dict[str, int]](default_lease_timeout=30.0) as q:
        await q.put("task-1", {"data": 123})
        await q.put("task-2", {"data": 456})
        key, value, lease = await q.get()
        assert (key, value) == ("task-1", {"data": 123})
        assert lease.key == "task-1" and isinstance(lease.token, str)
        await q.ack(lease)
        key, value, lease = await q.take("task-2")
        assert value == {"data": 456}
        await q.ack(lease)
        assert await q.qsize() == 0


async def test_non_string_keys_come_back_as_themselves() -> None:
    async with LeasedKeyQueue[tuple[int, int], str]() as q:
        await q.put((1, 2), "a")
        await q.put(7, "b")  # type: ignore[arg-type]
        assert await q.available_keys() == {(1, 2), 7}
        key, value, lease = await q.take(7)  # type: ignore[arg-type]
        assert key == 7 and value == "b"
        assert await q.inflight_keys() == {7}
        await q.ack(lease)
        assert await q.available_keys() == {(1, 2)}


async def test_put_on_available_key_updates_in_place() -> None:
    async with LeasedKeyQueue[str, int]() as q:
        await q.put("a", 1)
        await q.put("b", 2)
        await q.put("a", 3)
        assert (await q.get())[:2] == ("a", 3)


async def test_in_flight_policies() -> None:
    async with LeasedKeyQueue[str, int]() as q:
        await q.put("k", 1)
        _, _, lease = await q.get()
        with pytest.raises(KeyAlreadyInFlightError):
            await q.put("k", 2, if_in_flight="reject")
        await q.put("k", 3, if_in_flight="update")
        await q.release(lease)
        assert (await q.get())[1] == 3


async def test_buffer_never_gives_two_leases_on_one_key() -> None:
    # The original enqueued a second copy: get() then leased the key a second time.
    async with LeasedKeyQueue[str, int]() as q:
        await q.put("k", 1)
        _, _, first = await q.get()
        await q.put("k", 2, if_in_flight="buffer")
        with pytest.raises(asyncio.TimeoutError):
            await q.get(timeout=0.05)
        await q.ack(first)
        key, value, second = await q.get(timeout=1)
        assert (key, value) == ("k", 2)
        await q.ack(second)


async def test_release_front_and_back() -> None:
    async with LeasedKeyQueue[str, int]() as q:
        for i, k in enumerate("abc"):
            await q.put(k, i)
        _, _, lease = await q.get()
        await q.release(lease, requeue_front=True)
        assert (await q.get())[0] == "a"
        q2: LeasedKeyQueue[str, int] = LeasedKeyQueue()
        await q2.put("a", 1)
        await q2.put("b", 2)
        _, _, lease = await q2.get()
        await q2.release(lease)
        assert [(await q2.get())[0] for _ in range(2)] == ["b", "a"]
        await q2.close()


async def test_peek_and_contains_see_available_keys_only() -> None:
    async with LeasedKeyQueue[str, int]() as q:
        await q.put("k", 1)
        assert await q.peek("k") == 1 and await q.contains("k")
        await q.get()
        assert await q.peek("k") is None and not await q.contains("k")
        assert await q.inflight_size() == 1 and await q.qsize() == 0
        assert await q.peek("missing") is None


async def test_ack_errors() -> None:
    async with LeasedKeyQueue[str, int]() as q:
        await q.put("k", 1)
        _, _, lease = await q.get()
        await q.ack(lease)
        with pytest.raises(LeaseAlreadyAcknowledgedError):
            await q.ack(lease)
        with pytest.raises(InvalidLeaseError):
            await q.release("not a lease")  # type: ignore[arg-type]


async def test_expired_lease_goes_back_to_the_front_without_a_reaper() -> None:
    async with LeasedKeyQueue[str, int](default_lease_timeout=0.05) as q:
        await q.put("a", 1)
        await q.put("b", 2)
        _, _, stale = await q.get()
        key, _, lease = await q.get(timeout=2, lease_timeout=10)  # b now; a after expiry
        assert key == "b"
        key, _, again = await q.get(timeout=2)
        assert key == "a"
        with pytest.raises(InvalidLeaseError):
            await q.ack(stale)
        await q.ack(again)
        await q.ack(lease)


async def test_timeout_is_a_total_deadline_despite_wakeups() -> None:
    # The original restarted the wait after every notify_all; here puts of other
    # keys wake nobody blocked in take(), and the deadline holds.
    async with LeasedKeyQueue[str, int]() as q:

        async def noise() -> None:
            for i in range(20):
                await q.put(f"other-{i}", i)
                await asyncio.sleep(0.01)

        started = time.monotonic()
        noisy = asyncio.create_task(noise())
        with pytest.raises(asyncio.TimeoutError):
            await q.take("never", timeout=0.1)
        assert time.monotonic() - started < 0.5
        await noisy


async def test_close_fails_blocked_and_later_calls() -> None:
    q: LeasedKeyQueue[str, int] = LeasedKeyQueue()
    await q.start()
    blocked = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    await q.close()
    with pytest.raises(QueueClosedError):
        await asyncio.wait_for(blocked, 2)
    with pytest.raises(QueueClosedError):
        await q.put("k", 1)
    with pytest.raises(QueueClosedError):
        await q.get()


async def test_nothing_is_retained_after_ack() -> None:
    # The original kept every acked token in a set forever.
    async with LeasedKeyQueue[int, int]() as q:
        for i in range(200):
            await q.put(i, i)
            _, _, lease = await q.get()
            await q.ack(lease)
        gc.collect()
        assert q._codes == {} and q._keys == {}
