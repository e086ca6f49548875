"""Cancellation, fail_first, BaseExceptions, infinite mode and bounded results."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest

from leaseq.runner import ClosedError, TaskRunner
from leaseq.testing import FakeClock

from .conftest import until


async def stuck() -> None:
    await asyncio.Event().wait()


async def nothing() -> None:
    return None


async def test_cancel_a_queued_task_removes_it() -> None:
    ran: list[int] = []

    async def note(i: int) -> None:
        ran.append(i)

    r = TaskRunner(workers=1)
    hs = [r.submit(note, i) for i in range(5)]
    assert hs[2].cancel()
    assert hs[2].cancelled() and "before it ran" in hs[2].result().message
    assert not hs[2].cancel()  # already finished
    summary = await r.run()
    assert ran == [0, 1, 3, 4]
    assert (summary.succeeded, summary.cancelled) == (4, 1)


async def test_cancel_a_delayed_or_retrying_task(clock: FakeClock) -> None:
    async def bad() -> None:
        raise OSError("later")

    r = TaskRunner(clock=clock)
    delayed = r.submit(nothing, delay=100)
    retrying = r.submit(bad, retries=1, retry_delay=50)
    run = asyncio.create_task(r.run())
    await until(lambda: retrying.status == "retrying")
    assert r.stats["scheduled"] == 2
    assert delayed.cancel() and retrying.cancel()
    summary = await run  # nothing left to wait for: no clock advance needed
    assert summary.cancelled == 2 and r.stats["scheduled"] == 0
    assert retrying.attempts == 1


async def test_cancel_a_running_task_and_the_worker_goes_on() -> None:
    r = TaskRunner(workers=1)
    running = r.submit(stuck)
    after = r.submit(nothing)
    run = asyncio.create_task(r.run())
    await until(lambda: running.status == "running")
    assert running.cancel()
    summary = await run
    assert running.cancelled() and after.status == "succeeded"
    assert summary.cancelled == 1 and summary.succeeded == 1


async def test_cancel_from_another_thread() -> None:
    r = TaskRunner(workers=1)
    running = r.submit(stuck)
    queued = r.submit(stuck)
    run = asyncio.create_task(r.run())
    await until(lambda: running.status == "running")
    accepted: list[bool] = []
    threads = [
        threading.Thread(target=lambda h=h: accepted.append(h.cancel())) for h in (queued, running)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary = await run
    assert accepted == [True, True]
    assert running.cancelled() and queued.cancelled() and summary.cancelled == 2


async def test_runner_cancel_from_another_thread_stops_a_run() -> None:
    r = TaskRunner(workers=2, mode="infinite")
    hs = [r.submit(stuck, must_complete=True) for _ in range(3)]
    run = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 2)
    fut = []
    t = threading.Thread(target=lambda: fut.append(r.cancel()))
    t.start()
    t.join()
    summary = await run
    assert all(h.cancelled() for h in hs) and summary.cancelled == 3
    assert r.closed
    with pytest.raises(ClosedError):
        r.submit(nothing)


async def test_fail_first_cancels_all_but_must_complete() -> None:
    gate = asyncio.Event()

    async def guarded() -> str:
        await gate.wait()
        return "kept"

    async def boom() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("first failure")

    r = TaskRunner(workers=3, fail_policy="fail_first")
    must = r.submit(guarded, must_complete=True, priority=9)
    running = r.submit(stuck, priority=9)
    bad = r.submit(boom, priority=5)
    queued = [r.submit(nothing) for _ in range(4)]
    queued_must = r.submit(guarded, must_complete=True)
    run = asyncio.create_task(r.run())
    await until(bad.done)
    assert all(h.cancelled() for h in queued)  # queued ones: at once
    await until(running.done)  # a running one: at its next await
    assert running.cancelled() and all(h.cancelled() for h in queued)
    assert "fail_first" in running.result().message
    with pytest.raises(ClosedError):
        r.submit(nothing)
    gate.set()
    summary = await run
    assert must.value() == "kept" and queued_must.value() == "kept"
    assert (summary.failed, summary.cancelled, summary.succeeded) == (1, 5, 2)
    r.submit(nothing)  # a new run accepts tasks again


async def test_fail_policy_override_per_run() -> None:
    async def boom() -> None:
        raise RuntimeError("x")

    r = TaskRunner(workers=1)
    r.submit(boom, priority=1)
    later = r.submit(nothing)
    summary = await r.run(fail_policy="fail_first")
    assert later.cancelled() and summary.cancelled == 1
    r.submit(boom, priority=1)
    later = r.submit(nothing)
    summary = await r.run()
    assert later.status == "succeeded"


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, GeneratorExit])
async def test_a_base_exception_is_that_tasks_failure(exc_type: type[BaseException]) -> None:
    async def raises() -> None:
        raise exc_type("from the task")

    def raises_in_thread() -> None:
        raise exc_type("from a thread")

    r = TaskRunner(workers=1)
    a = r.submit(raises, retries=3)
    b = r.submit(raises_in_thread)
    c = r.submit(nothing)
    summary = await asyncio.wait_for(r.run(), 10)
    assert isinstance(a.exception(), exc_type) and a.attempts == 1  # never retried
    assert isinstance(b.exception(), exc_type)
    assert c.status == "succeeded"
    assert (summary.failed, summary.succeeded) == (2, 1)


async def test_a_task_raising_cancelled_error_is_recorded() -> None:
    async def gives_up() -> None:
        raise asyncio.CancelledError

    r = TaskRunner(workers=1)
    h = r.submit(gives_up)
    after = r.submit(nothing)
    summary = await asyncio.wait_for(r.run(), 10)
    assert h.cancelled() and after.status == "succeeded" and summary.cancelled == 1


async def test_cancelling_run_cancels_the_tasks() -> None:
    r = TaskRunner(workers=1)
    h = r.submit(stuck, must_complete=True)
    queued = r.submit(stuck)
    run = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 1)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert h.cancelled() and queued.cancelled() and r.stats["workers"] == 0


async def test_infinite_mode_runs_until_shutdown_with_bounded_results() -> None:
    r = TaskRunner(mode="infinite", workers=4, max_results=100)
    run = asyncio.create_task(r.run())
    refs: list[weakref.ref[object]] = []
    for _ in range(10):
        hs = [r.submit(nothing) for _ in range(100)]
        refs.append(weakref.ref(hs[0]))
        await r.join()
        assert len(r.results) <= 100
        del hs
    assert not run.done()
    gc.collect()
    # Only the newest 100 results are kept: older handles are released.
    assert all(ref() is None for ref in refs[:-1]) and refs[-1]() is not None
    assert r._store.count_live("tasks", now=r._clock()) == 0
    await r.shutdown()
    summary = await run
    assert summary.total_submitted == 1000 and summary.succeeded == 1000
    assert len(summary.results) == 100 and summary.dropped == 900


async def test_infinite_mode_keeps_10000_results_by_default() -> None:
    r = TaskRunner(mode="infinite")
    for _ in range(10_050):
        r.submit(nothing)
    await r.join()
    assert len(r.results) == 10_000
    r.cancel()
    await until(lambda: r.closed)


async def test_infinite_mode_run_timeout_returns(clock: FakeClock) -> None:
    r = TaskRunner(mode="infinite", clock=clock)
    h = r.submit(stuck)
    run = asyncio.create_task(r.run(timeout=3))
    await until(lambda: r.active_count == 1)
    clock.advance(3)
    summary = await run
    assert summary.timed_out and h.cancelled() and not r.closed


class _Odd(BaseException):
    pass


async def test_a_callback_raising_a_base_exception_never_hangs_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def bad_callback(_: object) -> None:
        raise _Odd("callback")

    r = TaskRunner(workers=1, on_start=bad_callback, on_complete=bad_callback)
    hs = [r.submit(nothing) for _ in range(3)]
    summary = await asyncio.wait_for(r.run(), 10)
    assert summary.succeeded == 3 and all(h.status == "succeeded" for h in hs)
    assert "_Odd" in caplog.text


async def test_cancel_a_queued_task_among_50000_is_a_keyed_removal() -> None:
    r = TaskRunner(workers=1)
    handles = [r.submit(nothing) for _ in range(50_000)]
    loop = asyncio.get_running_loop()
    costs = []
    for h in handles[::500]:
        start = loop.time()
        assert h.cancel()
        costs.append(loop.time() - start)
    costs.sort()
    # A heap rebuild (osiiso) costs ~100 ms here; a keyed removal is microseconds.
    # The bound is generous so that a loaded machine does not fail it.
    assert costs[len(costs) // 2] < 0.002
    summary = await r.run()
    assert (summary.cancelled, summary.succeeded) == (100, 49_900)


async def test_cancelling_a_queued_awaitable_closes_it() -> None:
    r = TaskRunner()
    coro = nothing()
    h = r.submit(coro)
    assert h.cancel()
    assert coro.cr_frame is None  # closed: no "never awaited" warning later
    await r.run()


async def test_cancelling_a_running_sync_task_says_its_thread_still_runs() -> None:
    release = threading.Event()
    r = TaskRunner(workers=1)
    h = r.submit(release.wait, 10)
    run = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 1)
    assert h.cancel()
    await run
    result = h.result()
    assert result.status == "cancelled" and result.still_running
    assert "still running" in result.message
    release.set()
    await r.shutdown()


async def test_max_results_zero_keeps_counts_only() -> None:
    r = TaskRunner(max_results=0)
    for _ in range(20):
        r.submit(nothing)
    summary = await r.run()
    assert r.results == () and summary.results == ()
    assert summary.succeeded == 20 and summary.dropped == 20
