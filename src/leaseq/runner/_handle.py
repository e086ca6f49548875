"""``TaskHandle`` (one submitted task), ``TaskGroup`` and ``as_completed``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from typing import Any, Literal, Protocol

from leaseq.runner._options import TaskOptions
from leaseq.runner._results import RunSummary, TaskResult, TaskStatus

__all__ = ["TaskGroup", "TaskHandle", "TaskState", "as_completed"]

_new = tuple.__new__

log = logging.getLogger("leaseq.runner")

TaskState = Literal["pending", "running", "retrying", "succeeded", "failed", "cancelled"]


class _Owner(Protocol):
    def _request_cancel(self, handle: TaskHandle) -> bool: ...

    def _shown_priority(self, priority: int) -> int: ...


def _call_back(fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        fn(arg)
    except Exception:
        log.exception("done callback %r raised", fn)


def _settle(fut: asyncio.Future[TaskResult], result: TaskResult) -> None:
    if not fut.done():
        fut.set_result(result)


class TaskHandle:
    """One submitted task: awaitable (``await handle`` gives its ``TaskResult``).

    A handle is finished exactly once, on the runner's event loop; ``cancel()``
    is safe from any thread. A finished handle drops its arguments; the
    runner keeps finished handles only as its bounded record of results.
    """

    # No __slots__ (callers may hang their own attributes on a handle). Every field
    # is set in __init__, none left to a class-level default: reading a default
    # through the class, or adding an attribute later, costs several times an
    # attribute the instance already has (submission and runs are the hot path).
    task_id: str
    scheduled_for: float | None
    started_at: float | None
    _status: TaskState
    _attempts: int
    # The outcome is recorded cheaply as (status, value, error, message, still_running,
    # finished_at); the TaskResult is built from it on first use.
    _outcome: tuple[TaskStatus, Any, BaseException | None, str, bool, float] | None
    _result: TaskResult | None
    _waiters: list[asyncio.Future[TaskResult]] | None
    _callbacks: list[Callable[[TaskHandle], Any]] | None
    _delayed: bool  # waiting in the queue for a future time (delay, retry)

    def __init__(
        self,
        owner: _Owner,
        fn: Any,
        args: tuple[Any, ...],
        opts: TaskOptions,
        kind: int,
        created_at: float,
    ) -> None:
        self._owner = owner
        self.fn = fn
        self.args = args
        self.opts = opts
        self.kind = kind
        self.created_at = created_at
        self.task_id = ""
        self.scheduled_for = None
        self.started_at = None
        self._status = "pending"
        self._attempts = 0
        self._outcome = None
        self._result = None
        self._waiters = None
        self._callbacks = None
        self._delayed = False

    # -- identity --------------------------------------------------------------
    @property
    def name(self) -> str:
        """The task's name: ``TaskOptions.name``, else the callable's name."""
        return self.opts.name or callable_name(self.fn)

    @property
    def priority(self) -> int:
        """The task's priority, in the submitting API's convention."""
        return self._owner._shown_priority(self.opts.priority)

    @property
    def must_complete(self) -> bool:
        return self.opts.must_complete

    @property
    def group_id(self) -> str | None:
        return self.opts.group_id

    @property
    def detached(self) -> bool:
        return self.opts.detached

    @property
    def metadata(self) -> Any:
        return self.opts.metadata

    @property
    def status(self) -> TaskState:
        """``pending``, ``running``, ``retrying`` (waiting in the queue for its next
        attempt), or the final ``succeeded`` / ``failed`` / ``cancelled``."""
        outcome = self._outcome
        return self._status if outcome is None else outcome[0]

    @property
    def attempts(self) -> int:
        """Attempts started so far."""
        return self._attempts

    def __repr__(self) -> str:
        return f"TaskHandle({self.name!r}, status={self.status!r}, id={self.task_id!r})"

    # -- outcome -----------------------------------------------------------------
    def done(self) -> bool:
        """True once the task has its final result."""
        return self._outcome is not None

    def cancelled(self) -> bool:
        """True when the task ended cancelled."""
        return self._outcome is not None and self._outcome[0] == "cancelled"

    def result(self) -> TaskResult:
        """The final ``TaskResult``; ``asyncio.InvalidStateError`` while unfinished."""
        result = self._result
        if result is None:
            if self._outcome is None:
                raise asyncio.InvalidStateError(f"task {self.name!r} has not finished")
            result = self._result = self._build()
        return result

    def _build(self) -> TaskResult:
        status, value, error, message, still, finished = self._outcome  # type: ignore[misc]
        o = self.opts
        started = self.started_at
        return _new(
            TaskResult,
            (
                self.task_id,
                o.name or callable_name(self.fn),
                status,
                value,
                error,
                self._attempts,
                self._owner._shown_priority(o.priority),
                o.must_complete,
                o.group_id,
                o.detached,
                self.scheduled_for,
                self.created_at,
                started,
                finished,
                0.0 if started is None else finished - started,
                message,
                o.metadata,
                still,
            ),
        )

    def exception(self) -> BaseException | None:
        """The exception of a failed task, else None (raises while unfinished)."""
        return self.result().exception

    def value(self) -> Any:
        """The return value; re-raises the task's exception, ``CancelledError`` if cancelled."""
        r = self.result()
        if r.status == "cancelled":
            raise asyncio.CancelledError(r.message)
        if r.exception is not None:
            raise r.exception
        return r.value

    def cancel(self) -> bool:
        """Cancel the task, from any thread. A queued or delayed task is removed from
        the queue by its key (O(log n)); a running one is interrupted. False when
        it has already finished. From another thread the request is handed to
        the runner's loop and True means "accepted"."""
        if self._outcome is not None:
            return False
        return self._owner._request_cancel(self)

    def add_done_callback(self, fn: Callable[[TaskHandle], Any]) -> None:
        """Call ``fn(handle)`` when the task finishes (now, if it has). Exceptions are logged."""
        if self._outcome is not None:
            _call_back(fn, self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(fn)

    def __await__(self) -> Generator[Any, None, TaskResult]:
        return self.wait().__await__()

    async def wait(self) -> TaskResult:
        """Wait for the final result and return it (many waiters are fine)."""
        if self._outcome is not None:
            return self.result()
        fut: asyncio.Future[TaskResult] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        try:
            return await fut
        finally:
            if self._waiters is not None and fut in self._waiters:
                self._waiters.remove(fut)

    # -- runner side ---------------------------------------------------------------
    def _notify(self) -> None:
        """After the outcome is recorded (runner's loop only): wake waiters, run callbacks."""
        waiters, self._waiters = self._waiters, None
        callbacks, self._callbacks = self._callbacks, None
        if waiters:
            result = self.result()
            try:
                here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                here = None
            for fut in waiters:
                loop = fut.get_loop()
                if loop is here:
                    _settle(fut, result)
                elif not loop.is_closed():
                    loop.call_soon_threadsafe(_settle, fut, result)
        if callbacks:
            for cb in callbacks:
                _call_back(cb, self)


def callable_name(fn: Any) -> str:
    """A readable name for a callable or awaitable."""
    name = getattr(fn, "__name__", None)
    if isinstance(name, str):
        return name
    code = getattr(fn, "cr_code", None)
    if code is not None:
        return str(code.co_name)
    inner = getattr(fn, "func", None)  # functools.partial
    if inner is not None:
        return callable_name(inner)
    return type(fn).__name__


async def as_completed(handles: Iterable[TaskHandle]) -> AsyncIterator[TaskHandle]:
    """Yield handles as they finish, fastest first."""
    done: asyncio.Queue[TaskHandle] = asyncio.Queue()
    pending = list(handles)
    loop = asyncio.get_running_loop()

    def arrived(h: TaskHandle) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            done.put_nowait(h)
        else:
            loop.call_soon_threadsafe(done.put_nowait, h)

    for h in pending:
        h.add_done_callback(arrived)
    for _ in pending:
        yield await done.get()


class TaskGroup:
    """Handles submitted together (``runner.group(...)``), waited on as one."""

    __slots__ = ("group_id", "handles")

    def __init__(self, group_id: str, handles: Iterable[TaskHandle]) -> None:
        self.group_id = group_id
        self.handles = tuple(handles)

    def __iter__(self) -> Iterator[TaskHandle]:
        return iter(self.handles)

    def __len__(self) -> int:
        return len(self.handles)

    def __repr__(self) -> str:
        return f"TaskGroup({self.group_id!r}, tasks={len(self.handles)})"

    def cancel(self) -> int:
        """Cancel every handle; return how many requests were accepted."""
        return sum(1 for h in self.handles if h.cancel())

    async def wait(self) -> RunSummary:
        """Wait for every task; a summary in submission order."""
        start = time.perf_counter()
        results = [await h.wait() for h in self.handles]
        return RunSummary.of(results, duration=time.perf_counter() - start)

    async def values(self) -> tuple[Any, ...]:
        """Every return value in submission order; ``ExecutionError`` if any task
        failed or was cancelled."""
        summary = await self.wait()
        summary.raise_for_errors(include_cancelled=True)
        return summary.values

    def as_completed(self) -> AsyncIterator[TaskHandle]:
        """This group's handles as they finish."""
        return as_completed(self.handles)
