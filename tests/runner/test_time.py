"""Delays, run_at, retries with backoff, timeouts and rates, on a fake clock."""

from __future__ import annotations

import asyncio
import threading

from leaseq.runner import TaskRunner
from leaseq.testing import FakeClock

from .conftest import until, until_threads


async def test_delay_and_run_at_wait_for_the_clock(clock: FakeClock) -> None:
    ran: list[str] = []

    async def note(tag: str) -> None:
        ran.append(tag)

    r = TaskRunner(clock=clock)
    later = r.submit(note, "delay", delay=30)
    at = r.submit(note, "run_at", run_at=clock() + 60)
    assert at.scheduled_for == clock() + 60
    now = r.submit(note, "now")
    assert later.scheduled_for == clock() + 30
    run = asyncio.create_task(r.run())
    await until(now.done)
    assert ran == ["now"] and r.stats["scheduled"] == 2
    clock.advance(29.9)
    for _ in range(50):
        await asyncio.sleep(0)
    assert not later.done()
    clock.advance(0.1)
    await later
    assert ran == ["now", "delay"]
    clock.advance(30)
    summary = await run
    assert ran == ["now", "delay", "run_at"] and summary.succeeded == 3 and at.done()


async def test_a_retry_waits_in_the_queue_not_in_a_worker(clock: FakeClock) -> None:
    ran: list[str] = []
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        ran.append(f"flaky{attempts}")
        if attempts < 3:
            raise ConnectionError("try again")
        return "ok"

    async def urgent() -> None:
        ran.append("urgent")

    r = TaskRunner(workers=1, clock=clock)
    h = r.submit(flaky, retries=3, retry_delay=10, backoff=2)
    run = asyncio.create_task(r.run())
    await until(lambda: h.status == "retrying")
    # The only worker is free while the retry waits: more urgent work runs now.
    u = r.submit(urgent, priority=5)
    await u
    assert ran == ["flaky1", "urgent"] and h.status == "retrying"
    clock.advance(10)
    await until(lambda: h.attempts == 2 and h.status == "retrying")
    clock.advance(19.9)  # backoff: the second retry waits 20
    for _ in range(50):
        await asyncio.sleep(0)
    assert h.attempts == 2
    clock.advance(0.1)
    summary = await run
    assert h.value() == "ok" and h.attempts == 3 and summary.succeeded == 2
    assert ran == ["flaky1", "urgent", "flaky2", "flaky3"]


async def test_retries_exhausted_fail_with_the_last_error(clock: FakeClock) -> None:
    async def bad() -> None:
        raise ValueError("always")

    r = TaskRunner(clock=clock)
    h = r.submit(bad, retries=2)  # no delay: retried at once
    summary = await r.run()
    assert h.status == "failed" and h.attempts == 3
    assert isinstance(h.exception(), ValueError) and summary.failed == 1


async def test_async_timeout_cancels_the_attempt(clock: FakeClock) -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    r = TaskRunner(workers=1, clock=clock)
    h = r.submit(slow, timeout=5)
    after = r.submit(asyncio.sleep, 0)
    run = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 1)
    clock.advance(5)
    summary = await run
    assert cancelled.is_set()
    assert h.status == "failed" and isinstance(h.exception(), TimeoutError)
    assert not h.result().still_running
    assert after.status == "succeeded"  # the worker went on
    assert (summary.failed, summary.succeeded) == (1, 1)


async def test_a_timeout_is_retried(clock: FakeClock) -> None:
    calls = 0

    async def first_hangs() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()
        return "second"

    r = TaskRunner(clock=clock)
    h = r.submit(first_hangs, timeout=1, retries=1)
    run = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 1)
    clock.advance(1)
    await run
    assert h.value() == "second" and h.attempts == 2


async def test_sync_timeout_is_reported_honestly(clock: FakeClock) -> None:
    release = threading.Event()
    finished = threading.Event()

    def blocking() -> str:
        release.wait(10)
        finished.set()
        return "late"

    r = TaskRunner(clock=clock)
    h = r.submit(blocking, timeout=2)
    run = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 1)
    clock.advance(2)
    summary = await run
    result = h.result()
    assert result.status == "failed" and isinstance(result.exception, TimeoutError)
    assert result.still_running and "still running" in result.message
    assert r.stats["abandoned_threads"] == 1 and not finished.is_set()
    release.set()
    await until_threads(lambda: r.stats["abandoned_threads"] == 0)
    assert finished.is_set() and summary.failed == 1
    await r.shutdown()


async def test_run_timeout_complete_priority_lets_must_complete_finish(
    clock: FakeClock,
) -> None:
    gate = asyncio.Event()

    async def stuck(tag: str) -> str:
        await gate.wait()
        return tag

    r = TaskRunner(workers=2, clock=clock)
    must = r.submit(stuck, "must", must_complete=True)
    other = r.submit(stuck, "other")
    queued_must = r.submit(stuck, "queued-must", must_complete=True)
    queued = r.submit(stuck, "queued")
    delayed = r.submit(stuck, "delayed", delay=100)
    run = asyncio.create_task(r.run(timeout=5))
    await until(lambda: r.active_count == 2)
    clock.advance(5)
    await until(other.done)
    assert other.cancelled() and queued.cancelled() and delayed.cancelled()
    assert not must.done() and not queued_must.done()
    gate.set()
    summary = await run
    assert summary.timed_out and not summary.ok
    assert must.value() == "must" and queued_must.value() == "queued-must"
    assert (summary.succeeded, summary.cancelled) == (2, 3)


async def test_run_timeout_cancel_stops_everything(clock: FakeClock) -> None:
    async def stuck() -> None:
        await asyncio.Event().wait()

    r = TaskRunner(workers=1, clock=clock, on_exit="cancel", timeout=5)
    must = r.submit(stuck, must_complete=True)
    queued = r.submit(stuck, must_complete=True)
    run = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 1)
    clock.advance(5)
    summary = await run
    assert summary.timed_out and summary.cancelled == 2
    assert must.cancelled() and queued.cancelled()
    assert "timed out" in must.result().message


async def test_rate_limits_starts_per_clock_second(clock: FakeClock) -> None:
    started: list[float] = []

    async def note() -> None:
        started.append(clock())

    r = TaskRunner(workers=4, clock=clock, rate=2, burst=2)
    t0 = clock()
    for _ in range(5):
        r.submit(note)
    run = asyncio.create_task(r.run())
    await until(lambda: len(started) == 2)
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(started) == 2  # the burst, then one start per 0.5 s
    clock.advance(0.5)
    await until(lambda: len(started) == 3)
    clock.advance(0.5)
    await until(lambda: len(started) == 4)
    clock.advance(0.5)
    await run
    assert [round(t - t0, 3) for t in started] == [0.0, 0.0, 0.5, 1.0, 1.5]
