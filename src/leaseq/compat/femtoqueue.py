"""``femtoqueue`` compatibility: ``FemtoQueue`` over the ``file://`` store.

Change one import::

    from leaseq.compat.femtoqueue import FemtoQueue   # was: from femtoqueue import FemtoQueue

    q = FemtoQueue(data_dir="fq", node_id="node1")
    q.push(b"foobar")
    while task := q.pop():
        ...  # task.data
        q.done(task)  # or q.fail(task)

Kept from femtoqueue 0.4's documentation: one file per task in ``data_dir``,
state changes by atomic ``rename()``; tasks in insertion order; a stable
``node_id`` per worker, so a restarted worker resumes its own in-progress tasks
first; tasks in progress for longer than ``timeout_stale_ms`` are taken over by
other nodes; ``schedule(data, time_us)`` delivers a task once the wall clock
passes ``time_us``; no background job.

Fixed: ids are unique across processes and hosts (femtoqueue's random suffix
was never generated, so concurrent pushes overwrote each other); staleness is
judged from the time a task was *claimed*, not enqueued (a backlog older than
the timeout was delivered twice); ``sync_after_write=True`` fsyncs the data
after it is written and the directory after every rename; a corrupt or
truncated task file is moved to the dead letters with a reason instead of
being retried forever.

Differences: ``done`` deletes the task (femtoqueue moved it to ``done/``);
``fail`` keeps it as a dead letter (inspect it with ``leaseq.Queue(
"file://DATA_DIR", name="femtoqueue").dead_letters()``); the on-disk layout is
leaseq's, not femtoqueue's (existing femtoqueue directories are not read);
``done``/``fail`` of a task that is no longer held raise ``leaseq.LeaseLost``
(femtoqueue raised a bare ``Exception``). A scheduled task keeps its id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from urllib.parse import quote, urlsplit

from leaseq._core.model import Lease
from leaseq.stores.base import PutRequest
from leaseq.stores.file import FileStore, open_file
from leaseq.stores.file._format import encode_owner

__all__ = ["FemtoQueue", "FemtoTask"]

QUEUE = "femtoqueue"


@dataclass
class FemtoTask:
    """A task handed out by ``pop``: its id and its bytes."""

    id: str
    data: bytes


class FemtoQueue:
    """A filesystem-backed, lock-free, durable task queue (femtoqueue's API)."""

    def __init__(
        self,
        data_dir: PathLike[str] | str,
        node_id: str,
        timeout_stale_ms: int = 30_000,
        sync_after_write: bool = False,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Open (or create) the queue in ``data_dir`` as worker ``node_id``.

        ``timeout_stale_ms``: how long a task may stay in progress before another
        node takes it over (counted from when it was claimed). ``sync_after_write``:
        fsync data and directories (survives power loss). ``clock`` (leaseq
        addition): epoch seconds, for tests.
        """
        if not isinstance(node_id, str) or not node_id:
            raise ValueError("node_id must be a non-empty, stable string per worker")
        encode_owner(node_id)  # ValueError now rather than at the first pop
        if timeout_stale_ms <= 0:
            raise ValueError(f"timeout_stale_ms must be > 0, got {timeout_stale_ms!r}")
        self.node_id = node_id
        self.timeout_stale_ms = timeout_stale_ms
        self.sync_after_write = sync_after_write
        self.data_dir = data_dir
        path = quote(os.path.abspath(os.fspath(data_dir)))
        self._store: FileStore = open_file(urlsplit(f"file://{path}"), durable=sync_after_write)
        self._clock = clock or time.time
        self._lease_timeout = timeout_stale_ms / 1000
        self._held: dict[str, Lease] = {}
        self._resume: list[Lease] | None = None  # own tasks a previous run left in progress

    def push(self, data: bytes) -> str:
        """Add a task at the back of the queue; return its id."""
        return self._put(data, None)

    def schedule(self, data: bytes, time_us: int) -> str:
        """Add a task that becomes available once the wall clock passes ``time_us``
        (microseconds since the epoch); a past time means now (the back of the queue)."""
        now = self._clock()
        return self._put(data, max(time_us / 1_000_000, now))

    def _put(self, data: bytes, at: float | None) -> str:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a task is bytes, not {type(data).__name__}")
        req = PutRequest(bytes(data), at=at)
        return self._store.put(QUEUE, req, now=self._clock()).id

    def pop(self) -> FemtoTask | None:
        """The next task, or None when none is available. A restarted node first gets
        back its own in-progress tasks; then stale tasks of other nodes (at the head,
        as leaseq delivers expired leases); then pending tasks in insertion order."""
        now = self._clock()
        if self._resume is None:
            self._resume = self._store.claim_owned(
                QUEUE, self.node_id, now=now, lease_timeout=self._lease_timeout
            )
        if self._resume:
            lease = self._resume.pop(0)
        else:
            got = self._store.claim(
                QUEUE, now=now, lease_timeout=self._lease_timeout, owner=self.node_id
            )
            if not got:
                return None
            lease = got[0]
        self._held[lease.id] = lease
        return FemtoTask(lease.id, lease.value)

    def _lease(self, task: FemtoTask) -> Lease:
        lease = self._held.pop(task.id, None)
        if lease is None:
            raise KeyError(f"task {task.id!r} is not in progress on node {self.node_id!r}")
        return lease

    def done(self, task: FemtoTask) -> None:
        """Mark a task done (it is deleted). ``LeaseLost`` if another node took it over."""
        self._store.ack(QUEUE, self._lease(task), now=self._clock())

    def fail(self, task: FemtoTask) -> None:
        """Mark a task failed: it is kept as a dead letter, never delivered again."""
        self._store.dead_letter(QUEUE, self._lease(task), now=self._clock(), error="failed")

    def close(self) -> None:
        """Release the store's files (femtoqueue had nothing to close)."""
        self._store.close()
