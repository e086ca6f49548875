"""The task runner: structured concurrency for callables in one process (DESIGN §6)."""

from __future__ import annotations

from leaseq.runner._errors import ClosedError, ExecutionError, QueueFullError, RunnerError
from leaseq.runner._handle import TaskGroup, TaskHandle, TaskState, as_completed
from leaseq.runner._options import TaskOptions
from leaseq.runner._results import RunSummary, TaskResult, TaskStatus
from leaseq.runner._runner import BoundTask, TaskRunner

__all__ = [
    "BoundTask",
    "ClosedError",
    "ExecutionError",
    "QueueFullError",
    "RunSummary",
    "RunnerError",
    "TaskGroup",
    "TaskHandle",
    "TaskOptions",
    "TaskResult",
    "TaskRunner",
    "TaskState",
    "TaskStatus",
    "as_completed",
]
