"""``leaseq.compat.osiiso``: osiiso 1.1's ``AsyncQueue`` API over ``leaseq.TaskRunner``.

Change ``from osiiso import AsyncQueue`` to ``from leaseq.compat.osiiso import
AsyncQueue``. osiiso's conventions are kept: **lower priority numbers run
first, default 3**; ``on_timeout="complete"|"cancel"`` (or the documented
``on_exit="complete_priority"|"cancel"``); ``size`` makes ``submit`` raise
``QueueFullError``; handles, groups, results, summaries and exceptions have
osiiso's names. The adapter only translates options; all queue logic is the
runner's, so osiiso's known faults are gone: a retry waits in the queue (a
more urgent task runs meanwhile), cancelling a queued task is a keyed removal
(no heap rebuild), a ``BaseException`` in a task is that task's failure (``run()``
never hangs), a sync task's timeout says its thread is still running, and
infinite mode keeps a bounded number of results.

Limits: priorities are ints in [-1000, 1000]; ``ThreadQueue``, ``ProcessQueue``,
``SharedQueue``, checkpoints and the ``tmap``/``pmap`` shortcuts are not provided.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from leaseq._core.clock import Clock
from leaseq.runner import (
    ClosedError,
    ExecutionError,
    QueueFullError,
    RunnerError,
    RunSummary,
    TaskGroup,
    TaskHandle,
    TaskResult,
    TaskRunner,
    as_completed,
)
from leaseq.runner import TaskOptions as _RunnerOptions

__all__ = [
    "AsyncQueue",
    "ClosedError",
    "ExecutionError",
    "OsiisoError",
    "QueueFullError",
    "RunSummary",
    "TaskGroup",
    "TaskHandle",
    "TaskOptions",
    "TaskResult",
    "as_completed",
    "run",
]

#: osiiso's base exception: every error the adapter raises on purpose derives from it.
OsiisoError = RunnerError

_T = TypeVar("_T")
_ON_TIMEOUT = {"complete": "complete_priority", "cancel": "cancel"}


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """osiiso's per-task options: ``priority`` lower runs first (default 3)."""

    priority: int = 3
    must_complete: bool = False
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    backoff: float = 1.0
    delay: float | None = None
    run_at: float | None = None
    name: str | None = None
    group_id: str | None = None
    detached: bool = False
    metadata: Any = None

    def __post_init__(self) -> None:
        self.to_runner()  # validates every field the way the runner will

    def replace(self, **overrides: Any) -> TaskOptions:
        """A validated copy with ``overrides`` applied."""
        return dataclasses.replace(self, **overrides)

    def to_runner(self) -> _RunnerOptions:
        """The same options in leaseq's convention (higher priority first)."""
        p = self.priority
        if isinstance(p, bool) or not isinstance(p, int):
            raise TypeError(f"priority must be an int, not {p!r}")
        return _RunnerOptions(
            priority=-p,
            must_complete=self.must_complete,
            timeout=self.timeout,
            retries=self.retries,
            retry_delay=self.retry_delay,
            backoff=self.backoff,
            delay=self.delay,
            run_at=self.run_at,
            name=self.name,
            group_id=self.group_id,
            detached=self.detached,
            metadata=self.metadata,
        )


_FIELDS = frozenset(f.name for f in dataclasses.fields(TaskOptions))
_DEFAULT = TaskOptions()


class AsyncQueue(TaskRunner):
    """osiiso's ``AsyncQueue``: a ``TaskRunner`` speaking osiiso's conventions.

    ``on_timeout="complete"`` (default) lets ``must_complete`` tasks finish when
    a run times out; ``"cancel"`` stops everything. ``on_exit`` is accepted
    with the runner's spelling (``"complete_priority"``/``"cancel"``).
    """

    _priority_sign = -1

    def __init__(
        self,
        *,
        workers: int | None = None,
        size: int = 0,
        timeout: float | None = None,
        mode: Literal["finite", "infinite"] = "finite",
        fail_policy: Literal["continue", "fail_first"] = "continue",
        on_timeout: Literal["complete", "cancel"] | None = None,
        on_exit: Literal["complete_priority", "cancel"] | None = None,
        rate: float | None = None,
        burst: int = 1,
        on_start: Callable[[TaskHandle], Any] | None = None,
        on_complete: Callable[[TaskResult], Any] | None = None,
        on_retry: Callable[[TaskHandle, BaseException], Any] | None = None,
        clock: Clock | None = None,
        max_results: int | None = None,
    ) -> None:
        super().__init__(
            workers=workers,
            size=size,
            timeout=timeout,
            mode=mode,
            fail_policy=fail_policy,
            on_exit=_exit_policy(on_timeout, on_exit),
            on_start=on_start,
            on_complete=on_complete,
            on_retry=on_retry,
            rate=rate,
            burst=burst,
            clock=clock,
            max_results=max_results,
        )

    def _options(self, opts: Any, overrides: Mapping[str, Any]) -> _RunnerOptions:
        if opts is not None and not isinstance(opts, TaskOptions):
            raise TypeError(
                "opts must be a leaseq.compat.osiiso.TaskOptions (lower priority first); "
                f"got {type(opts).__name__}"
            )
        base = _DEFAULT if opts is None else opts
        if overrides:
            unknown = set(overrides) - _FIELDS
            if unknown:
                raise TypeError(f"Unknown task option(s): {', '.join(sorted(unknown))}")
            base = dataclasses.replace(base, **overrides)
        return base.to_runner()

    async def start(self) -> AsyncQueue:
        """Bind the running loop and start workers (safe to call repeatedly)."""
        await super().start()
        return self

    async def __aenter__(self) -> AsyncQueue:
        await self.start()
        return self


def _exit_policy(on_timeout: str | None, on_exit: str | None) -> Any:
    if on_timeout is not None and on_timeout not in _ON_TIMEOUT:
        raise ValueError(f"on_timeout must be 'complete' or 'cancel', not {on_timeout!r}")
    mapped = None if on_timeout is None else _ON_TIMEOUT[on_timeout]
    if mapped is not None and on_exit is not None and mapped != on_exit:
        raise ValueError(f"on_timeout={on_timeout!r} contradicts on_exit={on_exit!r}")
    return mapped or on_exit or "complete_priority"


def run(coro: Coroutine[Any, Any, _T], *, debug: bool = False) -> _T:
    """Run a coroutine to completion (osiiso's ``run``; the standard event loop)."""
    return asyncio.run(coro, debug=debug)
