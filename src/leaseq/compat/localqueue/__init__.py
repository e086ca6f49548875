"""Drop-in ``localqueue`` over leaseq (``sqlite://`` by default).

Change ``from localqueue import PersistentQueue`` to
``from leaseq.compat.localqueue import PersistentQueue`` (and
``localqueue.retry`` to ``leaseq.compat.localqueue.retry``). A thin adapter:
every queue decision is leaseq's. Fixed, not copied:

* ``ack``/``release``/``dead_letter`` are fenced by the lease ``get_message()``
  took: a consumer whose lease ran out gets ``leaseq.LeaseLost`` instead of
  acking a redelivery that now belongs to someone else;
* ``task_done()`` acks the calling thread's own oldest ``get()``, not whichever
  message another thread is still processing;
* ``PriorityOrdering`` uses leaseq's priority order, which does not depend on
  float-timestamp ties as the clock moves;
* async workers never block the event loop (a ``leaseq.AsyncQueue`` on the
  same store); a retry is a release with a delay, never a sleep holding a lease.

Differences: ``store=`` takes a leaseq URL or store object (the default file
is ``./localqueue.sqlite3``); ``maxsize`` counts live messages (ready,
delayed and in flight), across processes; errors are recorded as
``"Type: message"`` text and shown as ``{"type", "message", "text"}``;
worker sightings for ``QueueStats`` (``leases_by_worker_id``,
``last_seen_by_worker_id``) are kept in a side queue ``<name>.localqueue-workers``
of the same store, one record per worker id and queue object;
LMDB stores, ``ResultStore`` and ``IdempotencyStore`` adapters are not
provided (the results ledger lives in the queue's own store).
"""

from __future__ import annotations

from leaseq.compat.localqueue._model import QueueMessage, QueueStats
from leaseq.compat.localqueue._policies import *  # noqa: F403
from leaseq.compat.localqueue._policies import __all__ as _policy_names
from leaseq.compat.localqueue._queue import DEFAULT_STORE_PATH, PersistentQueue
from leaseq.compat.localqueue._spec import QueueSpec
from leaseq.compat.localqueue._worker import (
    PersistentWorkerConfig,
    persistent_async_worker,
    persistent_worker,
)

__all__ = [
    "DEFAULT_STORE_PATH",
    "PersistentQueue",
    "PersistentWorkerConfig",
    "QueueMessage",
    "QueueSpec",
    "QueueStats",
    "persistent_async_worker",
    "persistent_worker",
    *_policy_names,
]
