"""The task runner's machinery: workers, outcomes, cancellation (``TaskRunner``'s base).

Tasks are messages of a private ``memory://`` store (DESIGN §6): the store
decides the order (higher priority first, then submission order), a delayed
task is a delayed message, a retry is a put of the same key with its backoff
delay (the task waits in the queue, not in a worker, so anything more urgent
runs first), and cancelling a queued task is a keyed removal (O(log n)). The
store's primitives never wait, so workers call them directly on the event
loop and do their own waiting with futures and the runner's clock timers.

A worker *pops* its task (``MemoryStore.pop_next``: claim and ack in one step)
rather than leasing it: nothing outside this process could redeliver a lost
lease, and the runner itself tracks what runs (``_Worker.handle``) and the
attempts (``TaskHandle._attempts``). A running task is therefore not in the
store, and ``size`` is checked against ``_outstanding``, not the store.

A worker is one coroutine that pops a task, runs it *inline* (no asyncio
task per task) and records its outcome. Interrupting a running task (cancel, timeout,
``fail_first``, forced shutdown) cancels the worker's coroutine with a
recorded reason; the worker takes the cancellation back (``uncancel``) and
goes on with the next task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from leaseq._core.clock import Clock
from leaseq._core.model import State
from leaseq.runner._calls import ASYNC, AWAITABLE, SYNC
from leaseq.runner._handle import TaskHandle
from leaseq.runner._results import TaskResult, TaskStatus
from leaseq.runner._timers import Timer, Timers
from leaseq.stores.base import PutRequest
from leaseq.stores.memory import MemoryStore

__all__ = ["Engine", "FailPolicy", "Mode", "OnExit"]

log = logging.getLogger("leaseq.runner")

Mode = Literal["finite", "infinite"]
FailPolicy = Literal["continue", "fail_first"]
OnExit = Literal["complete_priority", "cancel"]

QUEUE = "tasks"
_HOLD = 10 * 365 * 86400.0  # a cancelled task's brief lease (claim_key then ack)
_INFINITE_RESULTS = 10_000
# A worker hands the event loop a turn after this many tasks in a row: a run of
# tasks that never suspend must not starve timers, I/O and the other workers.
# (On CPython 3.11 this also gets the worker loop specialized early: its code is
# quickened only after several resumptions of the coroutine, not by looping.)
_TURN = 32
_STILL_RUNNING = "; its thread could not be stopped (threads cannot be killed) and is still running"
_new = tuple.__new__


def _emit(callback: Callable[..., Any] | None, *args: Any) -> None:
    if callback is None:
        return
    try:
        callback(*args)
    except (KeyboardInterrupt, SystemExit):
        raise  # the program is being stopped: asyncio lets these end the loop
    except BaseException:
        log.exception("runner callback %r raised", callback)


class _Worker:
    """One worker coroutine and what it is running."""

    __slots__ = ("cut", "handle", "reason", "task", "thread")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.handle: TaskHandle | None = None
        self.reason: str | None = None  # why the running task is being interrupted
        self.thread: ThreadFuture[Any] | None = None  # a sync task's thread call
        self.cut: ThreadFuture[Any] | None = None  # the thread call that was interrupted


class _RateGate:
    """At most ``rate`` task starts per second of the runner's clock, ``burst`` at once."""

    __slots__ = ("interval", "tat", "tau")

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = 1.0 / rate
        self.tau = (burst - 1) * self.interval
        self.tat = float("-inf")

    def wait(self, now: float) -> float:
        """Seconds until the next start is allowed (0: now)."""
        return max(0.0, max(self.tat, now) - self.tau - now)

    def take(self, now: float) -> None:
        self.tat = max(self.tat, now) + self.interval


class Engine:
    """State and machinery shared by every face of the runner (no public API here)."""

    #: 1 when priorities are leaseq's (higher first); a compat adapter whose callers
    #: write "lower first" sets -1 and hands the runner negated priorities.
    _priority_sign = 1

    def __init__(
        self,
        *,
        limit: int,
        mode: Mode,
        fail_policy: FailPolicy,
        on_exit: OnExit,
        on_start: Callable[[TaskHandle], Any] | None,
        on_complete: Callable[[TaskResult], Any] | None,
        on_retry: Callable[[TaskHandle, BaseException], Any] | None,
        rate: float | None,
        burst: int,
        clock: Clock,
        max_results: int | None,
    ) -> None:
        self._limit = limit
        self._mode: Mode = mode
        self._fail_policy: FailPolicy = fail_policy
        self._on_exit: OnExit = on_exit
        self._on_start = on_start
        self._on_complete = on_complete
        self._on_retry = on_retry
        self._gate = _RateGate(rate, burst) if rate is not None else None
        self._clock: Clock = clock
        if max_results is None and mode == "infinite":
            max_results = _INFINITE_RESULTS
        self._max_results = max_results
        self._store = MemoryStore()  # memory:// itself: workers use its pop_next()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._timers: Timers | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._init_state()

    def _init_state(self) -> None:
        self._outstanding = 0  # submitted and not finished
        self._scheduled = 0  # delayed or waiting for a retry
        self._workers: list[_Worker] = []
        self._parked: deque[asyncio.Future[None]] = deque()
        self._due: Timer | None = None
        self._results: deque[TaskHandle] | list[TaskHandle] = (
            deque(maxlen=self._max_results) if self._max_results is not None else []
        )
        self._counts = {"succeeded": 0, "failed": 0, "cancelled": 0}
        self._recorded = 0
        self._mark: tuple[int, dict[str, int]] = (0, dict(self._counts))
        self._abandoned = 0  # sync calls that timed out and whose threads still run
        self._accepting = True
        self._halt = False  # stopping after fail_first or a run timeout
        self._stopping = False  # workers exit
        self._started = False
        self._running = False
        self._closed = False
        self._timed_out = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._close_waiters: list[asyncio.Future[None]] = []

    # -- waiting ---------------------------------------------------------------------
    async def _wait_drained(self) -> None:
        while self._outstanding and not self._closed:
            fut = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await fut

    async def _wait_closed(self) -> None:
        while not self._closed:
            if self._timed_out:
                await self._wait_drained()
                return
            fut = asyncio.get_running_loop().create_future()
            self._close_waiters.append(fut)
            await fut

    def _settle_drained(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _run_timed_out(self) -> None:
        self._timed_out = True
        kill = self._on_exit == "cancel"
        self._abort(kill=kill, reason="cancelled: the run timed out")
        if not self._outstanding:
            self._settle_drained()
        for fut in self._close_waiters:  # infinite mode: stop waiting for shutdown
            if not fut.done():
                fut.set_result(None)
        self._close_waiters.clear()

    # -- workers -----------------------------------------------------------------------
    def _spawn(self) -> None:
        assert self._loop is not None
        w = _Worker()
        self._workers.append(w)
        w.task = self._loop.create_task(self._work(w), name="leaseq-runner-worker")

    def _wake_one(self) -> None:
        parked = self._parked
        while parked:
            fut = parked.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        if len(self._workers) < self._limit and not self._stopping:
            self._spawn()

    def _wake_all(self) -> None:
        parked, self._parked = self._parked, deque()
        for fut in parked:
            if not fut.done():
                fut.set_result(None)

    def _arm_due(self, when: float) -> None:
        """Make sure workers wake when the queue's next delayed task falls due."""
        due = self._due
        if due is not None and not due.cancelled and due.when <= when:
            return
        if due is not None:
            due.cancel()
        assert self._timers is not None
        self._due = self._timers.at(when, self._due_fired)

    def _arm_next_due(self) -> None:
        if self._scheduled:
            when = self._store.next_due(QUEUE, now=self._clock())
            if when is not None:
                self._arm_due(when)

    def _due_fired(self) -> None:
        self._due = None
        want = self._store.count_ready(QUEUE, now=self._clock())
        for _ in range(min(want, self._limit)):
            self._wake_one()
        self._arm_next_due()

    async def _park(self, until: float | None = None) -> None:
        assert self._loop is not None and self._timers is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._parked.append(fut)
        timer = None if until is None else self._timers.at(until, _resolve, fut)
        try:
            await fut
        finally:
            if timer is not None:
                timer.cancel()

    async def _work(self, w: _Worker) -> None:
        # The hot loop: pop, run inline, record. Everything unusual (delayed tasks,
        # timeouts, hooks, threads, stopping, waiters) goes through _prepare,
        # _settle and _record; the plain success is recorded right here.
        store, clock, gate, timers = self._store, self._clock, self._gate, self._timers
        pop_next = store.pop_next
        now = None  # the time of the success just recorded: the next pop reuses it
        streak = 0  # tasks popped since the worker last let the loop run
        try:
            while not self._stopping:
                streak += 1
                if streak > _TURN:
                    streak = 0
                    await asyncio.sleep(0)
                    now = None
                    continue
                if now is None:
                    now = clock()
                if gate is not None:
                    pause = gate.wait(now)
                    if pause > 0 and store.count_ready(QUEUE, now=now):
                        await self._park(now + pause)
                        now = None
                        continue
                h: TaskHandle | None = pop_next(QUEUE, now=now)
                if h is None:
                    await self._park()
                    now = None
                    streak = 0
                    continue
                if gate is not None:
                    gate.take(now)
                o = h.opts
                h._attempts += 1
                if (h._delayed or self._halt or self._on_start is not None) and not self._prepare(
                    h, now
                ):
                    now = None
                    continue
                h._status = "running"
                w.handle = h
                if h.started_at is None:
                    h.started_at = now
                timer = None
                if o.timeout is not None:
                    assert timers is not None
                    timer = timers.at(now + o.timeout, self._interrupt, w, h, "timeout")
                try:
                    kind = h.kind
                    if kind == ASYNC:
                        value = await h.fn(*h.args)
                    elif kind == SYNC:
                        value = await self._in_thread(w, h)
                    else:
                        value = await h.fn
                except BaseException as exc:
                    w.handle = None
                    if timer is not None:
                        timer.cancel()
                    self._settle(w, h, None, exc)
                    now = None
                    continue
                w.handle = None
                if timer is not None:
                    timer.cancel()
                if w.reason is not None:
                    self._settle(w, h, value, None)
                    now = None
                    continue
                now = clock()
                if (
                    h._waiters is not None
                    or h._callbacks is not None
                    or o.detached
                    or self._on_complete is not None
                ):
                    self._record(h, "succeeded", value, None, "", False, now)
                    now = None  # callbacks ran: read the clock afresh
                    continue
                # _record's steps for a success nobody listens to (keep in step with it).
                h._outcome = ("succeeded", value, None, "", False, now)
                h.args = ()
                self._outstanding -= 1
                self._recorded += 1
                self._counts["succeeded"] += 1
                self._results.append(h)
                if not self._outstanding:
                    self._settle_drained()
        except asyncio.CancelledError:
            raise
        except BaseException:
            # Only a callback raising a BaseException gets here (task errors are
            # results). Never lose a worker silently: log it and start another.
            log.exception("a task runner worker stopped on an error; starting a new one")
            if not self._stopping and self._started:
                self._loop.call_soon(self._replace_worker)  # type: ignore[union-attr]
            raise
        finally:
            self._workers.remove(w)

    def _replace_worker(self) -> None:
        if not self._stopping and self._started and len(self._workers) < self._limit:
            self._spawn()

    def _prepare(self, h: TaskHandle, now: float) -> bool:
        """The uncommon steps before an attempt (``h`` is already out of the store);
        False when it must not run."""
        if h._delayed:
            h._delayed = False
            self._scheduled -= 1
        if self._halt and not h.opts.must_complete:
            h._attempts -= 1  # this attempt never starts
            self._record(h, "cancelled", None, None, "cancelled: the run is stopping", False, now)
            return False
        if self._on_start is not None:
            h._status = "running"
            _emit(self._on_start, h)
        return True

    async def _in_thread(self, w: _Worker, h: TaskHandle) -> Any:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._limit, thread_name_prefix="leaseq-runner")
        ctx = contextvars.copy_context()
        call = self._executor.submit(ctx.run, h.fn, *h.args)
        w.thread = call
        try:
            result = await asyncio.wrap_future(call)
        finally:
            w.thread = None
        if asyncio.iscoroutine(result) or asyncio.isfuture(result):
            result = await result
        return result

    def _settle(self, w: _Worker, h: TaskHandle, value: Any, error: BaseException | None) -> None:
        """Turn one attempt's outcome into a retry or a final result."""
        reason, cut = w.reason, w.cut
        task = asyncio.current_task()
        external = False
        if reason is not None:
            w.reason = w.cut = None
            if task is not None:
                # Take back our own cancellation; anything left came from outside.
                external = task.uncancel() > 0
        elif task is not None and error is not None:
            external = task.cancelling() > 0
        if error is None:
            self._finish(h, "succeeded", value=value)
        elif reason == "timeout":
            still = self._abandon(cut)
            error = TimeoutError(f"task {h.name!r} timed out after {h.opts.timeout}s")
            self._failed(h, error, still_running=still)
        elif reason is not None:
            still = self._abandon(cut)
            why = f"{reason}{_STILL_RUNNING}" if still else reason
            self._finish(h, "cancelled", message=why, still=still)
        elif isinstance(error, asyncio.CancelledError):
            why = "the runner's worker was cancelled" if external else "the task raised it"
            self._finish(h, "cancelled", message=f"cancelled: {why}")
        else:
            self._failed(h, error)
        if external:
            raise asyncio.CancelledError  # the worker itself is being cancelled from outside

    def _abandon(self, call: ThreadFuture[Any] | None) -> bool:
        """After a timeout: True when a sync task's thread is still running (it
        cannot be killed); it is counted in ``stats`` until it returns."""
        if call is None or call.done():
            return False
        self._abandoned += 1
        loop = self._loop
        assert loop is not None

        def returned(_: object) -> None:
            # A closed loop raises RuntimeError: nobody is counting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._thread_returned)

        call.add_done_callback(returned)
        return True

    def _thread_returned(self) -> None:
        self._abandoned -= 1

    def _failed(self, h: TaskHandle, error: BaseException, *, still_running: bool = False) -> None:
        o = h.opts
        retry = (
            isinstance(error, Exception)
            and h._attempts <= o.retries
            and (o.must_complete or not self._halt)
        )
        if not retry:
            message = f"{type(error).__name__}: {error}"
            if still_running:
                message += _STILL_RUNNING
            self._finish(h, "failed", error=error, message=message, still=still_running)
            return
        now = self._clock()
        wait = o.retry_wait(h._attempts)
        h._status = "retrying"
        if wait > 0:
            h._delayed = True
            self._scheduled += 1
        # Back into the queue under its key (so cancel still finds it), behind what
        # is ready now: the same place a release with this delay would give it.
        self._store.put(QUEUE, PutRequest(h, h.task_id, o.priority, wait), now=now)
        _emit(self._on_retry, h, error)
        if wait > 0:
            self._arm_due(now + wait)

    def _finish(
        self,
        h: TaskHandle,
        status: TaskStatus,
        *,
        value: Any = None,
        error: BaseException | None = None,
        message: str = "",
        still: bool = False,
    ) -> None:
        self._record(h, status, value, error, message, still, self._clock())

    def _record(
        self,
        h: TaskHandle,
        status: TaskStatus,
        value: Any,
        error: BaseException | None,
        message: str,
        still: bool,
        now: float,
    ) -> None:
        """Publish a task's final outcome (its message is already gone from the store).

        Only the outcome is stored here; the ``TaskResult`` is built on first use
        (``handle.result()``, waiters, ``on_complete``, summaries)."""
        h._outcome = (status, value, error, message, still, now)
        h.args = ()
        if h._waiters is not None or h._callbacks is not None:
            h._notify()
        self._outstanding -= 1
        if not h.opts.detached:
            self._recorded += 1
            self._counts[status] += 1
            self._results.append(h)
        if not self._outstanding:
            self._settle_drained()
        if status == "failed" and self._fail_policy == "fail_first" and not self._halt:
            self._abort(kill=False, reason=f"cancelled: fail_first after {h.name} failed")
        if self._on_complete is not None:
            _emit(self._on_complete, h.result())

    # -- cancellation -------------------------------------------------------------------
    def _request_cancel(self, h: TaskHandle) -> bool:
        loop = self._loop
        if loop is not None and loop.is_running() and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._cancel_local, h, "cancelled")
            return True
        return self._cancel_local(h, "cancelled")

    def _cancel_local(self, h: TaskHandle, reason: str) -> bool:
        if h._outcome is not None:
            return False
        for w in self._workers:
            if w.handle is h:
                self._interrupt(w, h, reason)
                return True
        if not self._remove_queued(h):
            return False
        if h.kind == AWAITABLE and not h._attempts:
            close = getattr(h.fn, "close", None)  # a coroutine that will never be awaited
            if close is not None:
                close()
        why = reason if h._attempts else f"{reason} (before it ran)"
        self._record(h, "cancelled", None, None, why, False, self._clock())
        return True

    def _remove_queued(self, h: TaskHandle) -> bool:
        """Take a waiting task out of the store by its key: O(log n)."""
        store, now, key = self._store, self._clock(), h.task_id
        lease = store.claim_key(QUEUE, key, now=now, lease_timeout=_HOLD, owner=None)
        if lease is None:
            # Delayed (or waiting for a retry): make it claimable now, then take it.
            msg = store.peek_key(QUEUE, key, now=now)
            if msg is None or msg.state is not State.READY:
                return False
            store.put(
                QUEUE,
                PutRequest(h, key, msg.priority, if_ready="replace", if_in_flight="keep"),
                now=now,
            )
            lease = store.claim_key(QUEUE, key, now=now, lease_timeout=_HOLD, owner=None)
            if lease is None:
                return False
        if h._delayed:
            h._delayed = False
            self._scheduled -= 1
        store.ack(QUEUE, lease, now=now)
        return True

    def _interrupt(self, w: _Worker, h: TaskHandle, reason: str) -> None:
        """Stop the task ``w`` is running (if it still runs ``h``), recording why."""
        if w.handle is not h or w.reason is not None or w.task is None:
            return
        w.reason = reason
        w.cut = w.thread
        w.task.cancel()

    def _abort(self, *, kill: bool, reason: str) -> None:
        """Cancel what is queued and running (``must_complete`` tasks survive unless
        ``kill``); further submissions are refused until the run ends."""
        self._halt = True
        now = self._clock()
        for key in self._store.keys(QUEUE, State.READY, now=now):
            msg = self._store.peek_key(QUEUE, key, now=now)
            if msg is None:
                continue
            h: TaskHandle = msg.value
            if kill or not h.opts.must_complete:
                self._cancel_local(h, reason)
        for w in list(self._workers):
            running = w.handle
            if running is not None and (kill or not running.opts.must_complete):
                self._interrupt(w, running, reason)

    async def _stop_workers(self) -> None:
        workers = [w.task for w in self._workers if w.task is not None]
        self._stopping = True
        self._wake_all()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        self._started = False
        if self._due is not None:
            self._due.cancel()
            self._due = None


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
