"""leaseq.compat.osiiso: osiiso 1.1's conventions over TaskRunner, without its faults."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from leaseq.compat import osiiso
from leaseq.compat.osiiso import (
    AsyncQueue,
    ClosedError,
    ExecutionError,
    OsiisoError,
    QueueFullError,
    RunSummary,
    TaskGroup,
    TaskOptions,
)
from leaseq.testing import FakeClock


async def until(predicate: Any, turns: int = 10_000) -> None:
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def nothing() -> None:
    return None


async def stuck() -> None:
    await asyncio.Event().wait()


async def test_lower_priority_number_runs_first_default_3() -> None:
    order: list[str] = []

    async def note(tag: str) -> None:
        order.append(tag)

    q = AsyncQueue(workers=1)
    a = q.submit(note, "p5", priority=5)
    b = q.submit(note, "default")
    c = q.submit(note, "p1", opts=TaskOptions(priority=1))
    summary = await q.run()
    assert order == ["p1", "default", "p5"]
    assert (a.priority, b.priority, c.priority) == (5, 3, 1)
    assert sorted(r.priority for r in summary.results) == [1, 3, 5]
    assert isinstance(summary, RunSummary) and summary.ok


async def test_names_and_exceptions_match_osiiso() -> None:
    assert issubclass(ClosedError, OsiisoError) and issubclass(QueueFullError, OsiisoError)
    assert issubclass(ExecutionError, OsiisoError)
    for name in ("TaskHandle", "TaskResult", "TaskGroup", "as_completed", "run"):
        assert hasattr(osiiso, name)
    q = AsyncQueue(size=1)
    q.submit(nothing)
    with pytest.raises(QueueFullError):
        q.submit(nothing)
    await q.shutdown()
    with pytest.raises(ClosedError):
        q.submit(nothing)
    for bad in ({"size": -1}, {"workers": 0}, {"timeout": 0}, {"on_timeout": "later"}):
        with pytest.raises(ValueError):
            AsyncQueue(**bad)
    with pytest.raises(ValueError):
        AsyncQueue(on_timeout="cancel", on_exit="complete_priority")
    with pytest.raises(TypeError, match="Unknown task option"):
        AsyncQueue().submit(nothing, priorty=1)
    with pytest.raises(ValueError):
        TaskOptions(delay=1, run_at=5)


@pytest.mark.parametrize(
    ("options", "must_survives"),
    [
        ({}, True),
        ({"on_timeout": "complete"}, True),
        ({"on_timeout": "cancel"}, False),
        ({"on_exit": "cancel"}, False),
    ],
)
async def test_on_timeout_policies(options: dict[str, Any], must_survives: bool) -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def guarded() -> str:
        await gate.wait()
        return "done"

    q = AsyncQueue(workers=2, timeout=5, clock=clock, **options)
    must = q.submit(guarded, must_complete=True)
    other = q.submit(guarded)
    run = asyncio.create_task(q.run())
    await until(lambda: q.active_count == 2)
    clock.advance(5)
    await until(other.done)
    gate.set()
    summary = await run
    assert summary.timed_out and other.cancelled()
    assert (must.status == "succeeded") is must_survives


async def test_map_group_task_and_as_completed() -> None:
    async def add(a: int, b: int = 1) -> int:
        return a + b

    q = AsyncQueue(workers=2)

    @q.task(priority=1)
    async def inc(x: int) -> int:
        return x + 1

    hs = q.map(add, [(1, 2), {"a": 5}, 7])
    g = q.group(add, [1, 2], group_id="pair")
    bound = inc(41, priority=2)
    summary = await q.run()
    assert [h.value() for h in hs] == [3, 6, 8]
    assert isinstance(g, TaskGroup) and await g.values() == (2, 3)
    assert bound.value() == 42 and bound.priority == 2
    assert summary.by_group()["pair"][0].group_id == "pair"
    seen = [h async for h in AsyncQueue.as_completed(hs)]
    assert sorted(h.value() for h in seen) == [3, 6, 8]


async def test_fixed_fault_retry_does_not_block_a_more_urgent_task() -> None:
    clock = FakeClock()
    order: list[str] = []
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        order.append(f"flaky{calls}")
        if calls == 1:
            raise OSError("retry me")

    async def urgent() -> None:
        order.append("urgent")

    q = AsyncQueue(workers=1, clock=clock)
    h = q.submit(flaky, retries=1, retry_delay=30)
    run = asyncio.create_task(q.run())
    await until(lambda: h.status == "retrying")
    await q.submit(urgent, priority=0)
    assert order == ["flaky1", "urgent"]
    clock.advance(30)
    await run
    assert order == ["flaky1", "urgent", "flaky2"] and h.status == "succeeded"


async def test_fixed_fault_base_exception_does_not_hang_run() -> None:
    async def interrupts() -> None:
        raise KeyboardInterrupt

    q = AsyncQueue(workers=1)
    h = q.submit(interrupts)
    after = q.submit(nothing)
    summary = await asyncio.wait_for(q.run(), 10)
    assert h.status == "failed" and isinstance(h.exception(), KeyboardInterrupt)
    assert after.status == "succeeded" and summary.failed == 1


async def test_fixed_fault_sync_timeout_is_honest() -> None:
    clock = FakeClock()
    release = threading.Event()
    q = AsyncQueue(clock=clock)
    h = q.submit(release.wait, 10, timeout=1)
    run = asyncio.create_task(q.run())
    await until(lambda: q.active_count == 1)
    clock.advance(1)
    await run
    assert h.result().still_running and "still running" in h.result().message
    release.set()
    await q.shutdown()


async def test_fixed_fault_infinite_results_are_bounded() -> None:
    q = AsyncQueue(mode="infinite", max_results=50)
    run = asyncio.create_task(q.run())
    for _ in range(5):
        for _ in range(100):
            q.submit(nothing)
        await q.join()
    assert len(q.results) == 50
    q.cancel()
    summary = await run
    assert summary.total_submitted == 500 and len(summary.results) == 50


async def test_cancel_queued_and_queue_cancel_from_a_thread() -> None:
    q = AsyncQueue(workers=1)
    running = q.submit(stuck)
    queued = [q.submit(nothing) for _ in range(100)]
    assert queued[50].cancel() and queued[50].cancelled()
    run = asyncio.create_task(q.run())
    await until(lambda: running.status == "running")
    t = threading.Thread(target=q.cancel)
    t.start()
    t.join()
    summary = await run
    await until(lambda: q.closed)  # the forced shutdown finishes on the loop
    assert running.cancelled() and summary.cancelled == 101


async def test_strict_run_and_value_reraise() -> None:
    async def bad() -> None:
        raise ValueError("nope")

    q = AsyncQueue()
    h = q.submit(bad)
    with pytest.raises(ExecutionError):
        await q.run(strict=True)
    with pytest.raises(ValueError):
        h.value()


def test_run_helper_runs_a_coroutine() -> None:
    async def main() -> int:
        async with AsyncQueue() as q:
            h = q.submit(nothing)
        return 1 if h.status == "succeeded" else 0

    assert osiiso.run(main()) == 1
