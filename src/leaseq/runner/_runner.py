"""``TaskRunner``: the public face of the task runner (submission and lifecycle).

The machinery (workers, outcomes, cancellation) is ``leaseq.runner._engine``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from leaseq._core.clock import Clock
from leaseq.runner._calls import AWAITABLE, SYNC, kind_of
from leaseq.runner._engine import QUEUE, Engine, FailPolicy, Mode, OnExit
from leaseq.runner._errors import ClosedError, QueueFullError
from leaseq.runner._handle import TaskGroup, TaskHandle, as_completed, callable_name
from leaseq.runner._options import TaskOptions, resolve_options
from leaseq.runner._results import RunSummary, TaskResult
from leaseq.runner._timers import Timer, Timers
from leaseq.stores.base import PutRequest

__all__ = ["BoundTask", "TaskRunner"]

_new = tuple.__new__


class TaskRunner(Engine):
    """Run callables (async or sync) with priorities, retries, timeouts and limits.

    ``workers=None`` scales workers with the backlog up to ``min(32, cpu*4)``.
    ``size`` bounds outstanding tasks (queued, delayed, running): ``submit``
    raises ``QueueFullError`` beyond it. ``mode="finite"``: ``run()`` returns
    when every task has finished; ``"infinite"``: it returns after
    ``shutdown()`` (or ``cancel()``, or its timeout). ``fail_policy="fail_first"``
    cancels everything but ``must_complete`` tasks on the first failure. When
    a run times out, ``on_exit="complete_priority"`` lets ``must_complete``
    tasks finish and ``"cancel"`` stops everything. ``rate``/``burst`` limit
    task starts per second. ``clock`` is the time source of delays, ``run_at``,
    timeouts, retries and rates (``leaseq.testing.FakeClock`` in tests).
    ``max_results`` bounds the results kept (default: all in finite mode,
    the newest 10,000 in infinite mode).

    The runner is bound to one event loop: ``submit`` and friends are called
    from its thread; ``handle.cancel()`` and ``runner.cancel()`` from any thread.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        size: int = 0,
        timeout: float | None = None,
        mode: Mode = "finite",
        fail_policy: FailPolicy = "continue",
        on_exit: OnExit = "complete_priority",
        on_start: Callable[[TaskHandle], Any] | None = None,
        on_complete: Callable[[TaskResult], Any] | None = None,
        on_retry: Callable[[TaskHandle, BaseException], Any] | None = None,
        rate: float | None = None,
        burst: int = 1,
        clock: Clock | None = None,
        max_results: int | None = None,
    ) -> None:
        _check_args(workers, size, timeout, mode, fail_policy, on_exit, rate, burst, max_results)
        super().__init__(
            limit=workers if workers is not None else min(32, (os.cpu_count() or 1) * 4),
            mode=mode,
            fail_policy=fail_policy,
            on_exit=on_exit,
            on_start=on_start,
            on_complete=on_complete,
            on_retry=on_retry,
            rate=rate,
            burst=burst,
            clock=clock if clock is not None else time.time,
            max_results=max_results,
        )
        self._size = size
        self._timeout = timeout
        self._group_ids = itertools.count(1)
        self._default = self._options(None, {})
        self._last_fn: Any = None
        self._last_kind = SYNC

    # -- properties ----------------------------------------------------------------
    @property
    def active_count(self) -> int:
        """Tasks running now."""
        return sum(1 for w in self._workers if w.handle is not None)

    @property
    def pending_count(self) -> int:
        """Tasks submitted and not yet running (queued, delayed, or waiting to retry)."""
        return self._outstanding - self.active_count

    @property
    def closed(self) -> bool:
        """True once ``shutdown()`` has completed."""
        return self._closed

    @property
    def results(self) -> tuple[TaskResult, ...]:
        """The results kept so far (see ``max_results``), oldest first."""
        return tuple(h.result() for h in self._results)

    @property
    def stats(self) -> dict[str, int | bool]:
        """pending, active, scheduled, completed, workers, abandoned_threads, closed."""
        return {
            "pending": self.pending_count,
            "active": self.active_count,
            "scheduled": self._scheduled,
            "completed": self._recorded,
            "workers": len(self._workers),
            "abandoned_threads": self._abandoned,
            "closed": self._closed,
        }

    # -- submission ----------------------------------------------------------------
    def _options(self, opts: Any, overrides: Mapping[str, Any]) -> TaskOptions:
        """Resolve the caller's options (a compat adapter converts its own here)."""
        return resolve_options(opts, overrides)

    def _shown_priority(self, priority: int) -> int:
        """A priority as the caller's API writes it."""
        return priority * self._priority_sign

    def submit(
        self, fn: Any, /, *args: Any, opts: TaskOptions | None = None, **overrides: Any
    ) -> TaskHandle:
        """Queue ``fn(*args)`` and return its handle.

        ``fn`` is a coroutine function (runs on the loop), a sync callable (runs in a
        thread) or an awaitable (awaited once; it cannot be retried). Options come
        from ``opts`` and/or keyword overrides. Raises ``ClosedError`` when the runner
        does not accept tasks, ``QueueFullError`` when ``size`` tasks are outstanding.
        """
        if opts is None and not overrides:
            return self._enqueue(fn, args, self._default)
        return self._enqueue(fn, args, self._options(opts, overrides))

    def _enqueue(self, fn: Any, args: tuple[Any, ...], o: TaskOptions) -> TaskHandle:
        if self._halt or not self._accepting:
            raise ClosedError(self._refusal())
        if fn is self._last_fn:  # map() and loops submit one function many times
            kind = self._last_kind
        else:
            kind = kind_of(fn)
            if kind != AWAITABLE:
                self._last_fn, self._last_kind = fn, kind
            elif o.retries:
                raise ValueError("an awaitable runs once and cannot be retried; submit a function")
        if self._size and self._outstanding >= self._size:
            # Counted here, not by the store: a running task is no longer in it.
            raise QueueFullError(
                f"the runner holds {self._size} outstanding tasks (size={self._size}); "
                "wait for some to finish (await handle, join()) or raise size"
            )
        now = self._clock()
        handle = TaskHandle(self, fn, args, o, kind, now)
        delay, at = o.delay, o.run_at
        msg = self._store.put(
            QUEUE,
            _new(
                PutRequest, (handle, None, o.priority, delay or 0.0, at, "update", "update", None)
            ),
            now=now,
        )
        handle.task_id = msg.key
        self._outstanding += 1
        if (delay or at is not None) and msg.available_at > now:
            handle.scheduled_for = msg.available_at
            handle._delayed = True
            self._scheduled += 1
            if self._started:
                self._arm_due(msg.available_at)
        elif self._started:
            self._wake_one()
        return handle

    def _refusal(self) -> str:
        if self._closed or not self._accepting:
            return "the runner is shut down; create a new one (or reset() it)"
        return "the runner is stopping this run (fail_first or timeout); submit after run() returns"

    def map(
        self, fn: Any, iterable: Iterable[Any], *, opts: Any = None, **overrides: Any
    ) -> list[TaskHandle]:
        """Submit ``fn`` once per element: a tuple is positional arguments, a mapping
        keyword arguments, anything else the single argument."""
        o = self._options(opts, overrides)
        return [self._enqueue(f, a, o) for f, a in map(functools.partial(_fan, fn), iterable)]

    def group(
        self,
        tasks: Any,
        iterable: Iterable[Any] | None = None,
        *,
        group_id: str | None = None,
        opts: Any = None,
        **overrides: Any,
    ) -> TaskGroup:
        """Submit a batch as one ``TaskGroup``: ``group([(fn, *args), ...])`` or
        ``group(fn, iterable)`` (elements as in ``map``)."""
        o = self._options(opts, overrides)
        gid = group_id or o.group_id or f"group-{next(self._group_ids)}"
        if o.group_id != gid:
            o = o.replace(group_id=gid)
        if iterable is not None:
            handles = [self._enqueue(f, a, o) for f, a in (_fan(tasks, e) for e in iterable)]
        else:
            entries = list(tasks)
            for entry in entries:
                if not isinstance(entry, tuple) or not entry:
                    raise TypeError("each group entry must be a tuple (callable, *args)")
            handles = [self._enqueue(e[0], e[1:], o) for e in entries]
        return TaskGroup(gid, handles)

    def task(self, opts: Any = None, **overrides: Any) -> Callable[[Any], BoundTask]:
        """Decorator: calling the decorated function submits it to this runner."""
        self._options(opts, overrides)  # fail early on bad options

        def bind(fn: Any) -> BoundTask:
            return BoundTask(self, fn, opts, overrides)

        return bind

    @staticmethod
    def as_completed(handles: Iterable[TaskHandle]) -> AsyncIterator[TaskHandle]:
        """Yield handles as they finish, fastest first."""
        return as_completed(handles)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> TaskRunner:
        """Bind the running loop and start workers for the backlog. Idempotent."""
        if self._closed:
            raise ClosedError("the runner is shut down; create a new one (or reset() it)")
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._workers:
                raise RuntimeError("the runner's workers run on another event loop")
            if self._timers is not None:
                self._timers.close()
            self._loop = loop
            self._loop_thread = threading.get_ident()
            self._timers = Timers(self._clock, loop)
            self._due = None
        if not self._started:
            self._started = True
            self._stopping = False
            ready = self._store.count_ready(QUEUE, now=self._clock())
            for _ in range(min(self._limit, ready)):
                self._spawn()
            self._arm_next_due()
        return self

    async def run(
        self,
        timeout: float | None = None,
        *,
        strict: bool = False,
        fail_policy: FailPolicy | None = None,
    ) -> RunSummary:
        """Run the submitted tasks and return this run's summary.

        The summary covers the tasks that finished since the previous run ended
        (a task cancelled before ``run()`` counts in it). Finite mode returns
        once every task has finished; infinite mode once the
        runner is shut down. On ``timeout`` (default: the runner's) the run stops
        as ``on_exit`` says and ``timed_out`` is set. ``strict=True`` raises
        ``ExecutionError`` if a task failed. Cancelling ``run()`` itself cancels
        every task (``must_complete`` too) before the cancellation propagates.
        """
        if self._running:
            raise RuntimeError("run() is already in progress")
        if fail_policy is not None and fail_policy not in ("continue", "fail_first"):
            raise ValueError(f"fail_policy must be 'continue' or 'fail_first', not {fail_policy!r}")
        self._running = True
        begun = time.perf_counter()
        mark = self._mark  # results since the previous run ended belong to this one
        saved_policy = self._fail_policy
        self._fail_policy = fail_policy or saved_policy
        limit = self._timeout if timeout is None else timeout
        timer: Timer | None = None
        try:
            await self.start()
            assert self._timers is not None
            if limit is not None:
                timer = self._timers.at(self._clock() + limit, self._run_timed_out)
            try:
                if self._mode == "finite":
                    await self._wait_drained()
                else:
                    await self._wait_closed()
            except asyncio.CancelledError:
                self._abort(kill=True, reason="cancelled: run() was cancelled")
                await self._stop_workers()
                raise
            if self._mode == "finite" or self._timed_out:
                await self._stop_workers()
            summary = self._summary(mark, begun)
            self._mark = (self._recorded, dict(self._counts))
        finally:
            if timer is not None:
                timer.cancel()
            self._running = False
            self._halt = False
            self._timed_out = False
            self._fail_policy = saved_policy
        if strict:
            summary.raise_for_errors()
        return summary

    async def join(self) -> None:
        """Wait until no task is outstanding (starts the runner if needed)."""
        await self.start()
        await self._wait_drained()

    async def shutdown(self, *, force: bool = False) -> None:
        """Stop accepting tasks and stop the runner.

        ``force=False`` lets every outstanding task finish first; ``force=True``
        cancels everything now, ``must_complete`` tasks included.
        """
        if self._closed:
            return
        self._accepting = False
        if force:
            self._abort(kill=True, reason="cancelled: forced shutdown")
        elif self._outstanding:
            await self.start()
            await self._wait_drained()
        await self._stop_workers()
        self._close()

    def _close(self) -> None:
        self._closed = True
        self._accepting = False
        if self._executor is not None:
            # Threads cannot be killed: abandoned sync calls finish in the background.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        for fut in self._close_waiters:
            if not fut.done():
                fut.set_result(None)
        self._close_waiters.clear()
        self._settle_drained()

    def cancel(self) -> Any:
        """Force a shutdown, from any thread: everything running or queued is cancelled.

        Returns the ``asyncio.Task`` (loop thread) or ``concurrent.futures.Future``
        (other threads) doing it, or None when the runner never started.
        """
        loop = self._loop
        if loop is not None and loop.is_running():
            if threading.get_ident() == self._loop_thread:
                return loop.create_task(self.shutdown(force=True))
            return asyncio.run_coroutine_threadsafe(self.shutdown(force=True), loop)
        self._accepting = False
        self._abort(kill=True, reason="cancelled: the runner was cancelled")
        self._close()
        return None

    def reset(self) -> None:
        """Cancel whatever is outstanding, forget results and make the runner reusable."""
        if self._running:
            raise RuntimeError("cannot reset() during run()")
        if self._workers:
            raise RuntimeError("cannot reset() while workers run; await shutdown() first")
        self._abort(kill=True, reason="cancelled: the runner was reset")
        self._store.purge(QUEUE)
        if self._timers is not None:
            self._timers.close()
        self._timers = None
        self._loop = None
        self._init_state()

    def clear_results(self) -> None:
        """Forget the results kept so far (counts in later summaries are unaffected)."""
        self._results.clear()

    async def __aenter__(self) -> TaskRunner:
        await self.start()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Drain on a normal exit; cancel everything when the block raised."""
        await self.shutdown(force=exc_type is not None)

    def _summary(self, mark: tuple[int, dict[str, int]], begun: float) -> RunSummary:
        start, before = mark
        n = self._recorded - start
        kept = self._results
        take = min(n, len(kept))
        window = tuple(itertools.islice(kept, len(kept) - take, None))
        counts = {k: v - before[k] for k, v in self._counts.items()}
        return RunSummary(
            n,
            counts["succeeded"],
            counts["failed"],
            counts["cancelled"],
            self._timed_out,
            time.perf_counter() - begun,
            dropped=n - take,
            source=window,
        )


def _fan(fn: Any, entry: Any) -> tuple[Any, tuple[Any, ...]]:
    if isinstance(entry, Mapping):
        return functools.partial(fn, **entry), ()
    if isinstance(entry, tuple):
        return fn, entry
    return fn, (entry,)


def _check_args(
    workers: int | None,
    size: int,
    timeout: float | None,
    mode: str,
    fail_policy: str,
    on_exit: str,
    rate: float | None,
    burst: int,
    max_results: int | None,
) -> None:
    if workers is not None and workers <= 0:
        raise ValueError(f"workers must be > 0 (or None to scale), got {workers}")
    if size < 0:
        raise ValueError(f"size must be >= 0 (0: unbounded), got {size}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if mode not in ("finite", "infinite"):
        raise ValueError(f"mode must be 'finite' or 'infinite', not {mode!r}")
    if fail_policy not in ("continue", "fail_first"):
        raise ValueError(f"fail_policy must be 'continue' or 'fail_first', not {fail_policy!r}")
    if on_exit not in ("complete_priority", "cancel"):
        raise ValueError(f"on_exit must be 'complete_priority' or 'cancel', not {on_exit!r}")
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be > 0 starts per second, got {rate}")
    if burst < 1:
        raise ValueError(f"burst must be >= 1, got {burst}")
    if max_results is not None and max_results < 0:
        raise ValueError(f"max_results must be >= 0, got {max_results}")


class BoundTask:
    """A function bound to a runner by ``@runner.task()``: calling it submits it.

    Options given at call time override the decorator's, in the runner's
    own convention (a compat adapter's options stay in its convention)."""

    __slots__ = ("_fn", "_opts", "_overrides", "_resolved", "_runner")

    def __init__(
        self, runner: TaskRunner, fn: Any, opts: Any, overrides: Mapping[str, Any]
    ) -> None:
        self._runner = runner
        self._fn = fn
        self._opts = opts
        self._overrides = dict(overrides)
        self._resolved = runner._options(opts, overrides)

    def _with(self, overrides: Mapping[str, Any]) -> TaskOptions:
        if not overrides:
            return self._resolved
        return self._runner._options(self._opts, {**self._overrides, **overrides})

    def __call__(self, *args: Any, **overrides: Any) -> TaskHandle:
        return self._runner._enqueue(self._fn, args, self._with(overrides))

    def map(self, iterable: Iterable[Any], **overrides: Any) -> list[TaskHandle]:
        opts = self._with(overrides)
        return [self._runner._enqueue(f, a, opts) for f, a in (_fan(self._fn, e) for e in iterable)]

    def group(self, iterable: Iterable[Any], **overrides: Any) -> TaskGroup:
        merged = {**self._overrides, **overrides}
        return self._runner.group(self._fn, iterable, opts=self._opts, **merged)

    @property
    def __name__(self) -> str:
        return callable_name(self._fn)

    def __repr__(self) -> str:
        return f"BoundTask({self.__name__!r})"
