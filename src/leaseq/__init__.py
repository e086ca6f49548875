"""leaseq: a keyed, leased queue that hands work to exactly one holder at a time
and never loses it — one API from ``memory://`` to ``sqlite://``, ``file://``,
``redis://`` and ``postgresql://``.

    import leaseq
    q = leaseq.Queue("sqlite:///jobs.db", name="emails")
    q.put({"to": "a@b"}, key="user-42")
    with q.lease(timeout=10) as job:
        send(job.value)          # acked on success, released on exception
"""

from __future__ import annotations

from leaseq._async.queue import AsyncLeaseContext, AsyncQueue
from leaseq._core.model import Event, Lease, Message, Outcome, QueueStats, State
from leaseq._sync.queue import LeaseContext, Queue
from leaseq.errors import (
    Closed,
    ConfigurationError,
    DeadLettered,
    Empty,
    Full,
    KeyExists,
    KeyInFlight,
    LeaseLost,
    LeaseqError,
    MessageNotFound,
    SchemaMismatch,
    StoreError,
    StoreUnavailable,
)
from leaseq.runner import (
    ClosedError,
    ExecutionError,
    QueueFullError,
    RunnerError,
    RunSummary,
    TaskGroup,
    TaskHandle,
    TaskOptions,
    TaskResult,
    TaskRunner,
)
from leaseq.stores import open_store
from leaseq.worker import (
    Backoff,
    CircuitBreaker,
    RateLimiter,
    Reject,
    Retry,
    RetryLater,
    Worker,
    WorkerStats,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AsyncLeaseContext",
    "AsyncQueue",
    "Backoff",
    "CircuitBreaker",
    "Closed",
    "ClosedError",
    "ConfigurationError",
    "DeadLettered",
    "Empty",
    "Event",
    "ExecutionError",
    "Full",
    "KeyExists",
    "KeyInFlight",
    "Lease",
    "LeaseContext",
    "LeaseLost",
    "LeaseqError",
    "Message",
    "MessageNotFound",
    "Outcome",
    "Queue",
    "QueueFullError",
    "QueueStats",
    "RateLimiter",
    "Reject",
    "Retry",
    "RetryLater",
    "RunSummary",
    "RunnerError",
    "SchemaMismatch",
    "State",
    "StoreError",
    "StoreUnavailable",
    "TaskGroup",
    "TaskHandle",
    "TaskOptions",
    "TaskResult",
    "TaskRunner",
    "Worker",
    "WorkerStats",
    "__version__",
    "open_store",
]
