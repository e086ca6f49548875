"""``TaskResult`` (one finished task) and ``RunSummary`` (one run or group)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, Protocol

from leaseq.runner._errors import ExecutionError

__all__ = ["RunSummary", "TaskResult", "TaskStatus"]

TaskStatus = Literal["succeeded", "failed", "cancelled"]


class TaskResult(NamedTuple):
    """The immutable record of one finished task.

    Times are the runner's clock (epoch seconds by default). A per-attempt
    timeout is a failure with a ``TimeoutError``. ``still_running`` is True
    when the last attempt was a sync callable interrupted (timeout or cancel)
    while its thread ran: Python cannot kill a thread, so that work may still
    be going on (``runner.stats["abandoned_threads"]`` counts such threads).
    """

    task_id: str
    name: str
    status: TaskStatus
    value: Any = None
    exception: BaseException | None = None
    attempts: int = 0
    priority: int = 0
    must_complete: bool = False
    group_id: str | None = None
    detached: bool = False
    scheduled_for: float | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float = 0.0
    duration: float = 0.0
    message: str = ""
    metadata: Any = None
    still_running: bool = False

    @property
    def ok(self) -> bool:
        """True when the task succeeded."""
        return self.status == "succeeded"


class _HasResult(Protocol):
    def result(self) -> TaskResult: ...


class RunSummary:
    """What one ``run()`` (or one ``TaskGroup.wait()``) did. Read-only.

    The counts are exact. ``results`` holds every result of the run in
    completion order, except in infinite mode (or with ``max_results``) where
    only the newest are kept: ``dropped`` says how many were let go.
    Detached tasks are not counted. A runner's summary builds its
    ``TaskResult`` objects when ``results`` is first read.
    """

    __slots__ = (
        "_cancelled",
        "_dropped",
        "_duration",
        "_failed",
        "_results",
        "_source",
        "_succeeded",
        "_timed_out",
        "_total",
    )

    def __init__(
        self,
        total_submitted: int,
        succeeded: int,
        failed: int,
        cancelled: int,
        timed_out: bool,
        duration: float,
        results: Sequence[TaskResult] = (),
        dropped: int = 0,
        *,
        source: Sequence[_HasResult] | None = None,
    ) -> None:
        self._total = total_submitted
        self._succeeded = succeeded
        self._failed = failed
        self._cancelled = cancelled
        self._timed_out = timed_out
        self._duration = duration
        self._dropped = dropped
        self._results: tuple[TaskResult, ...] | None = None if source else tuple(results)
        self._source = source

    @classmethod
    def of(
        cls, results: Sequence[TaskResult], *, duration: float, timed_out: bool = False
    ) -> RunSummary:
        """A summary counting ``results`` themselves."""
        counts = {"succeeded": 0, "failed": 0, "cancelled": 0}
        for r in results:
            counts[r.status] += 1
        return cls(
            len(results),
            counts["succeeded"],
            counts["failed"],
            counts["cancelled"],
            timed_out,
            duration,
            tuple(results),
        )

    @property
    def total_submitted(self) -> int:
        """Tasks covered (finished during the run, detached ones excepted)."""
        return self._total

    @property
    def succeeded(self) -> int:
        return self._succeeded

    @property
    def failed(self) -> int:
        return self._failed

    @property
    def cancelled(self) -> int:
        return self._cancelled

    @property
    def timed_out(self) -> bool:
        """True when the run was cut short by its timeout."""
        return self._timed_out

    @property
    def duration(self) -> float:
        """Wall-clock seconds the run took."""
        return self._duration

    @property
    def dropped(self) -> int:
        """Results not kept (bounded retention); they are still counted."""
        return self._dropped

    @property
    def results(self) -> tuple[TaskResult, ...]:
        """The kept results, in completion order."""
        if self._results is None:
            source, self._source = self._source or (), None
            self._results = tuple(h.result() for h in source)
        return self._results

    def __repr__(self) -> str:
        return (
            f"RunSummary(total_submitted={self._total}, succeeded={self._succeeded}, "
            f"failed={self._failed}, cancelled={self._cancelled}, "
            f"timed_out={self._timed_out}, duration={self._duration:.3f})"
        )

    @property
    def errors(self) -> tuple[TaskResult, ...]:
        """The failed results."""
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def values(self) -> tuple[Any, ...]:
        """Return values of the succeeded tasks, in result order."""
        return tuple(r.value for r in self.results if r.status == "succeeded")

    @property
    def ok(self) -> bool:
        """True when nothing failed, nothing was cancelled and the run did not time out."""
        return self.failed == 0 and self.cancelled == 0 and not self.timed_out

    def successes(self) -> tuple[TaskResult, ...]:
        """The succeeded results."""
        return tuple(r for r in self.results if r.status == "succeeded")

    def cancellations(self) -> tuple[TaskResult, ...]:
        """The cancelled results."""
        return tuple(r for r in self.results if r.status == "cancelled")

    def by_task_id(self) -> dict[str, TaskResult]:
        """Results by task id."""
        return {r.task_id: r for r in self.results}

    def by_name(self) -> dict[str, tuple[TaskResult, ...]]:
        """Results grouped by task name."""
        grouped: dict[str, list[TaskResult]] = defaultdict(list)
        for r in self.results:
            grouped[r.name].append(r)
        return {k: tuple(v) for k, v in grouped.items()}

    def by_group(self) -> dict[str | None, tuple[TaskResult, ...]]:
        """Results grouped by ``group_id`` (None for ungrouped tasks)."""
        grouped: dict[str | None, list[TaskResult]] = defaultdict(list)
        for r in self.results:
            grouped[r.group_id].append(r)
        return {k: tuple(v) for k, v in grouped.items()}

    def raise_for_errors(self, *, include_cancelled: bool = False) -> None:
        """Raise ``ExecutionError`` carrying the failed (and, if asked, cancelled) results."""
        bad = self.errors + (self.cancellations() if include_cancelled else ())
        if bad:
            raise ExecutionError(bad)

    def display(self) -> str:
        """A short human-readable report (also printed)."""
        state = "TIMED OUT" if self.timed_out else "PASSED" if self.ok else "COMPLETED WITH ERRORS"
        lines = [
            f"run summary: {state}",
            f"  tasks {self.total_submitted}: succeeded {self.succeeded}, failed {self.failed}, "
            f"cancelled {self.cancelled} in {self.duration:.3f}s",
        ]
        lines += [f"  failed: {r.name} ({r.attempts} attempts): {r.message}" for r in self.errors]
        text = "\n".join(lines)
        print(text)
        return text
