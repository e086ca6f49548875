"""The store protocol: a few atomic primitives that never wait (DESIGN §3).

Every store (memory, SQLite, file, Redis, PostgreSQL) implements ``Store``;
every feature of leaseq is built on these primitives, so no feature exists on
one store only. Each primitive is one atomic step and returns at once.
Waiting is layered on top by the faces (``Queue``/``AsyncQueue``) through the
store's ``notifier`` (in-process wake-ups) and ``next_due``.

Conventions shared by every primitive:

* ``queue`` is the queue name; one store holds many queues.
* ``now`` is the time the caller's clock reads (epoch seconds). Stores with
  ``server_clock = True`` (Redis, PostgreSQL) receive ``None`` unless the
  queue was given an explicit clock, and then use the server's time.
* Expiry is logical: a LEASED message with ``lease_expires_at <= now`` is
  READY at the head of its priority (or DEAD when it used its last attempt)
  for every primitive, whether or not anything rewrote it.
* Lease-taking primitives (``renew``, ``ack``, ``release``, ``dead_letter``)
  raise ``LeaseLost`` unless the lease's token still holds the message and
  ``now < lease_expires_at`` (``leaseq._core.rules.check_lease``).
* Values: a store stores Python values; durable stores serialize them with
  their serializer and raise ``TypeError`` at ``put`` for a value it cannot hold.
* After a change that can unblock a waiter, a store calls its notifier
  (``ready``, ``scheduled``, ``space``) *after* releasing its own locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from leaseq._core.model import Lease, Message, Outcome, QueueStats, State

__all__ = ["PutRequest", "Store"]


class PutRequest(NamedTuple):
    """One validated put. ``key=None`` means "use the new message's id"."""

    value: Any
    key: str | None = None
    priority: int = 0
    delay: float = 0.0
    at: float | None = None
    if_ready: str = "update"
    if_in_flight: str = "update"
    max_attempts: int | None = None


class Store(Protocol):
    """What every store provides. All methods are thread-safe and never block on waiting."""

    #: The URL the store was opened with (credentials masked).
    url: str
    #: True when every primitive is a few in-memory steps: ``AsyncQueue`` then calls
    #: it on the event loop; otherwise it runs on the store's dedicated thread.
    inline: bool
    #: True when the store decides time itself (Redis/PostgreSQL server clock).
    server_clock: bool
    #: True when values are serialized (durable stores): a value the serializer
    #: cannot hold raises ``TypeError`` at put; False: Python objects kept as they are.
    serializes: bool
    #: In-process wake-ups (``leaseq._waiting.Notifier``); cross-process stores also
    #: feed it from their engine's change signal.
    notifier: Any

    def put(self, queue: str, req: PutRequest, *, now: float | None, maxsize: int = 0) -> Message:
        """Apply one put atomically and return the resulting message.

        Raises ``KeyExists`` / ``KeyInFlight`` per the policies, ``Full`` when
        ``maxsize`` > 0 and the queue holds that many live messages (a put that
        only updates an existing live message never counts as new).
        """
        ...

    def put_many(
        self, queue: str, reqs: Sequence[PutRequest], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        """Apply every put or none (one transaction); same rules as ``put``."""
        ...

    def claim(
        self,
        queue: str,
        *,
        now: float | None,
        lease_timeout: float,
        owner: str | None,
        limit: int = 1,
    ) -> list[Lease]:
        """Lease up to ``limit`` claimable messages in delivery order (empty list: none).

        Each claim makes a new token, counts one attempt and sets
        ``lease_expires_at = now + lease_timeout``.
        """
        ...

    def claim_key(
        self,
        queue: str,
        key: str,
        *,
        now: float | None,
        lease_timeout: float,
        owner: str | None,
    ) -> Lease | None:
        """Lease the key's message if it is claimable now; None when absent, leased or delayed."""
        ...

    def renew(self, queue: str, lease: Lease, *, now: float | None, seconds: float) -> Lease:
        """Set the lease's expiry to ``now + seconds``; return the new Lease (same token)."""
        ...

    def ack(
        self, queue: str, lease: Lease, *, now: float | None, outcome: Outcome | None = None
    ) -> None:
        """Delete the leased message (and make its buffered follow-up READY).

        With ``outcome``, record it in the queue's results ledger under
        ``outcome.key`` in the same atomic step (replacing an older outcome of
        that key): a crash leaves either both done or neither.
        """
        ...

    def release(
        self,
        queue: str,
        lease: Lease,
        *,
        now: float | None,
        delay: float = 0.0,
        front: bool = False,
        error: str | None = None,
    ) -> Message:
        """Put the message back (DEAD with reason ``max_attempts`` when it used its last
        attempt); a buffered follow-up's value replaces the message's value."""
        ...

    def dead_letter(
        self,
        queue: str,
        lease: Lease,
        *,
        now: float | None,
        error: str | None = None,
        outcome: Outcome | None = None,
    ) -> Message:
        """Move the leased message to DEAD with ``error`` as its reason; with
        ``outcome``, record it in the same atomic step (as ``ack`` does)."""
        ...

    def publish(
        self, items: Sequence[tuple[str, PutRequest]], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        """Apply one put per ``(queue, request)`` pair, across queues, all or none.

        The same rules as ``put`` for each queue (``maxsize`` bounds each target
        queue); if any put is refused, none is applied and the error is raised.
        """
        ...

    def get_outcome(self, queue: str, key: str, *, now: float | None) -> Outcome | None:
        """The key's recorded outcome, or None (never recorded, pruned, or
        ``expires_at <= now``). Never changes anything."""
        ...

    def prune_outcomes(self, queue: str, *, before: float) -> int:
        """Remove outcomes whose ``expires_at`` is at or before ``before``; return
        how many. ``purge`` leaves the ledger alone; this is how it shrinks."""
        ...

    def requeue_dead(
        self,
        queue: str,
        message_id: str,
        *,
        now: float | None,
        delay: float = 0.0,
        reset_attempts: bool = True,
    ) -> Message:
        """Put a dead letter back in line; ``MessageNotFound`` unless it is DEAD.

        ``KeyExists`` when another live message now holds its key.
        """
        ...

    def get_message(self, queue: str, message_id: str, *, now: float | None) -> Message | None:
        """Read one message by id (its logical state at ``now``)."""
        ...

    def peek_key(self, queue: str, key: str, *, now: float | None) -> Message | None:
        """Read the key's live message (READY or LEASED), or None."""
        ...

    def keys(self, queue: str, state: State, *, now: float | None) -> list[str]:
        """Keys of the messages in ``state`` (logical; READY includes delayed, DEAD lists
        the dead letters' keys)."""
        ...

    def count_ready(self, queue: str, *, now: float | None) -> int:
        """How many messages are claimable now (ready and due, expired leases included)."""
        ...

    def count_live(self, queue: str, *, now: float | None) -> int:
        """How many live messages (ready, delayed, leased) the queue holds."""
        ...

    def dead_letters(
        self, queue: str, *, now: float | None, limit: int | None = None
    ) -> list[Message]:
        """Dead letters, oldest death first."""
        ...

    def stats(self, queue: str, *, now: float | None) -> QueueStats:
        """Counts and ages at ``now``."""
        ...

    def purge(self, queue: str) -> int:
        """Remove every message of the queue (live and dead); return how many."""
        ...

    def prune_dead(self, queue: str, *, before: float) -> int:
        """Remove dead letters that died at or before ``before``; return how many."""
        ...

    def next_due(self, queue: str, *, now: float | None, key: str | None = None) -> float | None:
        """The next moment after ``now`` at which something becomes claimable by
        itself (a delayed message falls due, a lease expires), for the queue or
        for one key; None when nothing is scheduled."""
        ...

    def queues(self) -> list[str]:
        """Names of the queues that hold at least one message."""
        ...

    def close(self) -> None:
        """Release resources; later calls raise ``Closed``. Idempotent."""
        ...
