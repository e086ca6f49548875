"""Things specific to the async face ``leaseq.AsyncQueue``: never blocking the loop,
``async with q.lease()``, ``async with AsyncQueue()``, ``close()``, validation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import leaseq
from leaseq import State
from leaseq.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def q(clock):
    queue = leaseq.AsyncQueue("memory://", clock=clock, lease_timeout=10)
    yield queue
    await queue.close()


async def _max_loop_gap(coro) -> tuple[object, float]:
    """Run ``coro`` while a ticker measures the longest stall of the event loop."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker():
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.002)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    try:
        result: object = await coro
    except BaseException as exc:
        result = exc
    stop.set()
    await tick
    return result, max(gaps, default=0.0)


async def test_blocked_calls_leave_the_loop_running(q):
    await q.put("held", key="held")
    await q.get(block=False)
    for coro in (
        q.get(timeout=0.3),
        q.take("held", timeout=0.3),
        q.take("absent", timeout=0.3),
        q.get_many(4, timeout=0.3),
    ):
        result, gap = await _max_loop_gap(coro)
        assert isinstance(result, leaseq.Empty)
        assert gap < 0.2  # a wait run on the loop would stall it for the whole 0.3 s


async def test_blocked_put_leaves_the_loop_running(clock):
    async with leaseq.AsyncQueue("memory://", clock=clock, maxsize=1) as q:
        await q.put("a")
        result, gap = await _max_loop_gap(q.put("b", timeout=0.3))
        assert isinstance(result, leaseq.Full)
        assert gap < 0.2


async def test_a_waiter_is_woken_by_another_thread(q):
    task = asyncio.create_task(q.take("k", timeout=10))
    await asyncio.sleep(0.02)
    sync_q = leaseq.Queue(q.store, clock=FakeClock())
    threading.Thread(target=lambda: sync_q.put("from thread", key="k")).start()
    lease = await asyncio.wait_for(task, 2)
    assert lease.value == "from thread"


async def test_a_waiter_is_woken_by_a_clock_moved_in_another_thread(q, clock):
    await q.put("x", key="k", delay=50)
    task = asyncio.create_task(q.get(timeout=10))
    await asyncio.sleep(0.02)
    mover = threading.Thread(target=clock.advance, args=(50,))
    mover.start()
    lease = await asyncio.wait_for(task, 2)
    mover.join()
    assert lease.value == "x"


async def test_cancelling_a_waiter_leaves_the_queue_usable(q):
    task = asyncio.create_task(q.get(timeout=10))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await q.put("x")
    # The cancelled waiter must not swallow the wake-up meant for the next one.
    lease = await asyncio.wait_for(q.get(timeout=2), 3)
    assert lease.value == "x"


async def test_cancelled_waiter_does_not_steal_a_put(q):
    cancelled = asyncio.create_task(q.get(timeout=10))
    waiting = asyncio.create_task(q.get(timeout=10))
    await asyncio.sleep(0.02)
    cancelled.cancel()
    await q.put("x")
    lease = await asyncio.wait_for(waiting, 2)
    assert lease.value == "x"


async def test_timeout_via_wait_for_leaves_nothing_leased(q):
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(q.get(), 0.05)
    await q.put("x", key="k")
    assert (await q.peek("k")).state is State.READY
    assert (await q.get(block=False)).attempt == 1


# --- async with q.lease() -------------------------------------------------------------------


async def test_lease_context_acks_on_success(q):
    await q.put("x", key="k")
    async with q.lease(timeout=1) as job:
        assert isinstance(job, leaseq.Lease)
        assert (await q.peek("k")).state is State.LEASED
    assert not await q.contains("k")


async def test_lease_context_releases_on_exception(q):
    await q.put("x", key="k")
    with pytest.raises(ValueError, match="nope"):
        async with q.lease(timeout=1):
            raise ValueError("nope")
    msg = await q.peek("k")
    assert (msg.state, msg.attempts) == (State.READY, 1)
    assert "nope" in msg.last_error


async def test_lease_context_releases_on_cancellation(q):
    await q.put("x", key="k")
    started = asyncio.Event()

    async def body():
        async with q.lease(timeout=1):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await q.peek("k")).state is State.READY


async def test_lease_context_raises_empty(q):
    with pytest.raises(leaseq.Empty):
        async with q.lease(timeout=0.05):
            pytest.fail("the body must not run")


async def test_lease_context_body_error_wins_over_a_lost_lease(q, clock):
    await q.put("x")
    with pytest.raises(RuntimeError, match="body"):
        async with q.lease(timeout=1):
            clock.advance(10)
            raise RuntimeError("body")


# --- lifecycle and validation ---------------------------------------------------------------


async def test_async_context_manager_closes(clock):
    async with leaseq.AsyncQueue("memory://", clock=clock) as q:
        await q.put("x")
    assert q.closed
    with pytest.raises(leaseq.Closed):
        await q.put("y")
    await q.close()  # idempotent


async def test_close_wakes_a_blocked_get_with_closed(q):
    task = asyncio.create_task(q.get(timeout=10))
    await asyncio.sleep(0.02)
    await q.close()
    with pytest.raises(leaseq.Closed):
        await asyncio.wait_for(task, 2)


async def test_calls_after_close_raise_closed(q):
    await q.put("x")
    lease = await q.get(block=False)
    await q.close()
    for coro in (
        q.put("y"),
        q.get(block=False),
        q.take("x", block=False),
        q.ack(lease),
        q.release(lease),
        q.extend(lease, 5),
        q.peek("x"),
        q.stats(),
    ):
        with pytest.raises(leaseq.Closed):
            await coro


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"priority": 5000}, ValueError),
        ({"priority": "high"}, TypeError),
        ({"delay": -1}, ValueError),
        ({"delay": 1, "at": 1e9}, ValueError),
        ({"if_ready": "nope"}, ValueError),
        ({"if_in_flight": "nope"}, ValueError),
    ],
    ids=repr,
)
async def test_bad_put_arguments(q, kwargs, error):
    with pytest.raises(error):
        await q.put("x", **kwargs)
    assert (await q.stats()).total == 0


async def test_bad_claim_arguments(q):
    await q.put("x", key="k")
    with pytest.raises(ValueError):
        await q.get(lease_timeout=0)
    with pytest.raises(ValueError):
        await q.get_many(0)
    with pytest.raises(TypeError):
        await q.take(1)  # type: ignore[arg-type]
    lease = await q.get(block=False)
    with pytest.raises(ValueError):
        await q.extend(lease, -1)
    with pytest.raises(TypeError):
        await q.ack("not a lease")  # type: ignore[arg-type]


def test_constructor_validates_like_the_sync_face():
    with pytest.raises(ValueError):
        leaseq.AsyncQueue("memory://", lease_timeout=0)
    with pytest.raises(ValueError):
        leaseq.AsyncQueue("memory://", overflow="drop")
    with pytest.raises(leaseq.ConfigurationError):
        leaseq.AsyncQueue("nosuchscheme://x")


def test_both_faces_expose_the_same_names():
    public = {n for n in dir(leaseq.Queue) if not n.startswith("_")}
    async_public = {n for n in dir(leaseq.AsyncQueue) if not n.startswith("_")}
    assert public == async_public
    documented = {
        "put", "put_many", "get", "get_many", "take", "ack", "release", "extend",
        "dead_letter", "lease", "peek", "contains", "keys", "qsize", "empty", "full",
        "stats", "dead_letters", "requeue_dead", "prune_dead", "purge", "close",
    }  # fmt: skip
    assert documented <= public
