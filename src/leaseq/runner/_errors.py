"""The task runner's errors (all are ``leaseq.LeaseqError``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from leaseq.errors import Closed, Full, LeaseqError

if TYPE_CHECKING:
    from leaseq.runner._results import TaskResult

__all__ = ["ClosedError", "ExecutionError", "QueueFullError", "RunnerError"]


class RunnerError(LeaseqError):
    """Base class of the errors ``TaskRunner`` raises on purpose."""


class ClosedError(RunnerError, Closed):
    """The runner does not accept tasks: it is shut down, or stopping after a failure
    (``fail_first``) or a run timeout."""


class QueueFullError(RunnerError, Full):
    """``submit`` found ``size`` tasks outstanding (queued, delayed or running)."""


class ExecutionError(RunnerError):
    """One or more tasks failed (or were cancelled); ``results`` holds their results."""

    def __init__(self, results: Sequence[TaskResult]) -> None:
        self.results = tuple(results)
        failed = sum(1 for r in self.results if r.status == "failed")
        cancelled = len(self.results) - failed
        parts = []
        if failed:
            parts.append(f"{failed} task(s) failed")
        if cancelled:
            parts.append(f"{cancelled} task(s) cancelled")
        first = next((r for r in self.results if r.status == "failed"), None)
        detail = f" (first: {first.name}: {first.message})" if first is not None else ""
        super().__init__("; ".join(parts) + detail if parts else "no task failed")
