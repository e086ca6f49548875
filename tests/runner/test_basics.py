"""Submitting, running and reading results."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

import leaseq
from leaseq.runner import (
    ClosedError,
    ExecutionError,
    QueueFullError,
    RunSummary,
    TaskGroup,
    TaskOptions,
    TaskRunner,
)

from .conftest import until


async def double(x: int) -> int:
    return 2 * x


async def test_run_returns_values_in_a_summary() -> None:
    r = TaskRunner(workers=4)
    handles = [r.submit(double, i) for i in range(10)]
    summary = await r.run()
    assert isinstance(summary, RunSummary)
    assert (summary.total_submitted, summary.succeeded, summary.failed) == (10, 10, 0)
    assert summary.ok and not summary.timed_out
    assert sorted(summary.values) == [2 * i for i in range(10)]
    assert [h.value() for h in handles] == [2 * i for i in range(10)]
    assert all(h.status == "succeeded" and h.attempts == 1 for h in handles)
    assert r.pending_count == 0 and r.active_count == 0


async def test_higher_priority_runs_first() -> None:
    order: list[str] = []

    async def note(tag: str) -> None:
        order.append(tag)

    r = TaskRunner(workers=1)
    r.submit(note, "p0-a")
    r.submit(note, "p5-a", priority=5)
    r.submit(note, "p-3", priority=-3)
    r.submit(note, "p5-b", priority=5)
    r.submit(note, "p0-b")
    await r.run()
    assert order == ["p5-a", "p5-b", "p0-a", "p0-b", "p-3"]


async def test_a_task_submitted_while_running_is_ordered_by_priority() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def first() -> None:
        await gate.wait()
        r.submit(note, "urgent", priority=9)

    async def note(tag: str) -> None:
        order.append(tag)

    r = TaskRunner(workers=1)
    r.submit(first, priority=10)
    r.submit(note, "normal")
    run = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 1)
    gate.set()
    await run
    assert order == ["urgent", "normal"]


async def test_sync_callables_run_in_threads() -> None:
    loop_thread = threading.get_ident()

    def where(x: int) -> tuple[int, bool]:
        return x, threading.get_ident() != loop_thread

    r = TaskRunner(workers=2)
    handles = r.map(where, [1, 2, 3])
    await r.run()
    assert [h.value() for h in handles] == [(1, True), (2, True), (3, True)]


async def test_awaitables_and_callables_returning_coroutines() -> None:
    r = TaskRunner()
    h1 = r.submit(double(4))
    h2 = r.submit(lambda: double(5))
    await r.run()
    assert (h1.value(), h2.value()) == (8, 10)
    with pytest.raises(ValueError, match="cannot be retried"):
        coro = double(1)
        try:
            r.submit(coro, retries=1)
        finally:
            coro.close()


async def test_map_fans_tuples_mappings_and_single_values() -> None:
    async def f(a: int, b: int = 0) -> int:
        return a * 10 + b

    r = TaskRunner()
    hs = r.map(f, [(1, 2), {"a": 3, "b": 4}, 5])
    await r.run()
    assert [h.value() for h in hs] == [12, 34, 50]


async def test_group_waits_and_collects() -> None:
    async def fail() -> None:
        raise ValueError("no")

    r = TaskRunner()
    g = r.group(double, range(3), group_id="g1")
    mixed = r.group([(double, 5), (fail,)])
    assert isinstance(g, TaskGroup) and len(g) == 3
    await r.run()
    assert await g.values() == (0, 2, 4)
    assert all(h.group_id == "g1" for h in g)
    summary = await mixed.wait()
    assert (summary.succeeded, summary.failed) == (1, 1)
    assert mixed.group_id.startswith("group-")
    with pytest.raises(ExecutionError, match="1 task"):
        await mixed.values()
    by_group = (await r.run()).by_group()
    assert by_group == {}
    with pytest.raises(TypeError):
        r.group([double])


async def test_task_decorator_submits() -> None:
    r = TaskRunner()

    @r.task(priority=2, name="dbl")
    async def dbl(x: int) -> int:
        return x * 2

    h = dbl(21)
    hs = dbl.map([1, 2])
    await r.run()
    assert h.value() == 42 and h.name == "dbl" and h.priority == 2
    assert [x.value() for x in hs] == [2, 4]
    assert repr(dbl) == "BoundTask('dbl')"


async def test_handle_is_awaitable_and_reports() -> None:
    seen: list[Any] = []

    async def boom() -> None:
        raise KeyError("k")

    r = TaskRunner()
    ok = r.submit(double, 3, name="three", metadata={"m": 1})
    bad = r.submit(boom)
    ok.add_done_callback(seen.append)
    with pytest.raises(asyncio.InvalidStateError):
        ok.result()
    await r.start()
    result = await ok
    assert result.value == 6 and result.name == "three" and result.metadata == {"m": 1}
    assert seen == [ok]
    await bad
    assert isinstance(bad.exception(), KeyError)
    with pytest.raises(KeyError):
        bad.value()
    assert bad.result().message.startswith("KeyError")
    ok.add_done_callback(seen.append)  # already done: called at once
    assert seen == [ok, ok]
    assert not ok.cancel()
    await r.shutdown()


async def test_as_completed_yields_fastest_first() -> None:
    gates = [asyncio.Event() for _ in range(3)]

    async def wait_for(i: int) -> int:
        await gates[i].wait()
        return i

    r = TaskRunner(workers=3)
    hs = [r.submit(wait_for, i) for i in range(3)]
    await r.start()
    seen: list[int] = []

    async def consume() -> None:
        async for h in TaskRunner.as_completed(hs):
            seen.append(h.value())

    consumer = asyncio.create_task(consume())
    for count, i in enumerate((2, 0, 1), start=1):
        gates[i].set()
        await until(lambda count=count: len(seen) == count)  # type: ignore[misc]
    await consumer
    assert seen == [2, 0, 1]
    await r.shutdown()


async def test_strict_run_raises_execution_error() -> None:
    async def boom() -> None:
        raise RuntimeError("bad")

    r = TaskRunner()
    r.submit(boom)
    with pytest.raises(ExecutionError) as info:
        await r.run(strict=True)
    assert info.value.results[0].status == "failed"


async def test_size_bounds_outstanding_tasks() -> None:
    r = TaskRunner(size=2)
    r.submit(double, 1)
    r.submit(double, 2)
    with pytest.raises(QueueFullError) as info:
        r.submit(double, 3)
    assert isinstance(info.value, leaseq.errors.Full)
    assert (await r.run()).succeeded == 2
    r.submit(double, 4)  # room again
    assert (await r.run()).succeeded == 1


async def test_shutdown_closes_and_context_manager_drains() -> None:
    async with TaskRunner() as r:
        h = r.submit(double, 2)
    assert h.value() == 4 and r.closed
    with pytest.raises(ClosedError):
        r.submit(double, 1)
    with pytest.raises(ClosedError):
        await r.start()


async def test_context_manager_cancels_on_error() -> None:
    gate = asyncio.Event()

    async def stuck() -> None:
        await gate.wait()

    with pytest.raises(RuntimeError, match="outer"):
        async with TaskRunner(workers=1) as r:
            running = r.submit(stuck, must_complete=True)
            queued = r.submit(stuck)
            await until(lambda: r.active_count == 1)
            raise RuntimeError("outer")
    assert running.cancelled() and queued.cancelled()
    assert r.closed


async def test_reset_makes_a_closed_runner_reusable() -> None:
    r = TaskRunner()
    r.submit(double, 1)
    await r.run()
    await r.shutdown()
    assert len(r.results) == 1
    r.reset()
    assert not r.closed and r.results == ()
    h = r.submit(double, 5)
    summary = await r.run()
    assert h.value() == 10 and summary.total_submitted == 1


async def test_clear_results_and_stats() -> None:
    r = TaskRunner(workers=3)
    for i in range(5):
        r.submit(double, i)
    assert r.pending_count == 5
    await r.run()
    stats = r.stats
    assert stats["completed"] == 5 and stats["pending"] == 0 and stats["closed"] is False
    assert len(r.results) == 5
    r.clear_results()
    assert r.results == ()


async def test_run_twice_at_once_is_refused() -> None:
    gate = asyncio.Event()

    async def stuck() -> None:
        await gate.wait()

    r = TaskRunner()
    r.submit(stuck)
    first = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 1)
    with pytest.raises(RuntimeError, match="already"):
        await r.run()
    gate.set()
    assert (await first).succeeded == 1


async def test_auto_scaling_workers_follow_the_backlog() -> None:
    gate = asyncio.Event()

    async def stuck() -> None:
        await gate.wait()

    r = TaskRunner()
    limit = min(32, (os.cpu_count() or 1) * 4)
    for _ in range(3):
        r.submit(stuck)
    run = asyncio.create_task(r.run())
    await until(lambda: r.active_count == 3)
    assert r.stats["workers"] == 3
    for _ in range(limit + 5):
        r.submit(stuck)
    await until(lambda: r.active_count == limit)
    assert r.stats["workers"] == limit
    gate.set()
    await run
    assert r.stats["workers"] == 0


async def test_callbacks_fire_and_their_errors_are_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []

    def on_start(h: Any) -> None:
        events.append(f"start:{h.attempts}")
        raise RuntimeError("callback bug")

    r = TaskRunner(
        workers=1,
        on_start=on_start,
        on_complete=lambda res: events.append(f"done:{res.status}"),
        on_retry=lambda h, exc: events.append(f"retry:{type(exc).__name__}"),
    )
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("once")
        return "ok"

    h = r.submit(flaky, retries=2)
    await r.run()
    assert h.value() == "ok" and h.attempts == 2
    assert events == ["start:1", "retry:OSError", "start:2", "done:succeeded"]
    assert "callback bug" in caplog.text


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        TaskOptions(priority=1001)
    with pytest.raises(ValueError):
        TaskOptions(timeout=0)
    with pytest.raises(ValueError):
        TaskOptions(delay=1, run_at=2)
    with pytest.raises(ValueError):
        TaskOptions(retries=-1)
    with pytest.raises(TypeError, match="unknown task option"):
        TaskRunner().submit(double, 1, priorty=3)
    for bad in ({"workers": 0}, {"size": -1}, {"timeout": 0}, {"mode": "x"}, {"burst": 0}):
        with pytest.raises(ValueError):
            TaskRunner(**bad)
    assert TaskOptions(retry_delay=2, backoff=3).retry_wait(3) == 18


async def test_size_counts_a_running_task() -> None:
    # A running task is out of the store (its worker popped it): size still counts it.
    gate = asyncio.Event()

    async def held() -> str:
        await gate.wait()
        return "done"

    r = TaskRunner(size=1, workers=1)
    h = r.submit(held)
    await r.start()
    await until(lambda: h.status == "running")
    with pytest.raises(QueueFullError):
        r.submit(double, 1)
    gate.set()
    assert (await r.run()).succeeded == 1 and h.value() == "done"
    assert r.submit(double, 2).status == "pending"  # room again


async def test_a_retry_goes_back_under_its_key_behind_ready_tasks() -> None:
    order: list[str] = []
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        order.append(f"flaky{calls}")
        if calls == 1:
            raise OSError("once")

    async def other(name: str) -> None:
        order.append(name)

    r = TaskRunner(workers=1)
    h = r.submit(flaky, retries=1)
    r.submit(other, "a")
    r.submit(other, "b")
    key = h.task_id
    await r.run()
    assert order == ["flaky1", "a", "b", "flaky2"]
    assert h.task_id == key and h.attempts == 2 and h.result().attempts == 2


async def test_tasks_that_never_suspend_do_not_starve_the_event_loop() -> None:
    # A worker runs tasks inline; it still hands the loop a turn now and then.
    turns = 0
    done = False

    async def other_coroutine() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    async def noop() -> None:
        return None

    r = TaskRunner(workers=1)
    handles = [r.submit(noop) for _ in range(1000)]
    side = asyncio.create_task(other_coroutine())
    summary = await r.run()
    done = True
    await side
    assert summary.succeeded == 1000 and all(h.done() for h in handles)
    assert turns >= 20  # without turns it would run about once, at the worker's start
