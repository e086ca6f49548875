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
from leaseq._core.model import Event, Lease, Message, QueueStats, State
from leaseq._sync.queue import LeaseContext, Queue
from leaseq.errors import (
    Closed,
    ConfigurationError,
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

__version__ = "0.1.0.dev0"

__all__ = [
    "AsyncLeaseContext",
    "AsyncQueue",
    "Closed",
    "ClosedError",
    "ConfigurationError",
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
    "Queue",
    "QueueFullError",
    "QueueStats",
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
    "__version__",
    "open_store",
]
