"""The error tree of leaseq (DESIGN §10).

Every message names the queue, the key or id involved, and what to do next.
Engine failures keep the driver's exception as ``__cause__``.
"""

from __future__ import annotations

import queue as _stdlib_queue

__all__ = [
    "Closed",
    "ConfigurationError",
    "Empty",
    "Full",
    "KeyExists",
    "KeyInFlight",
    "LeaseLost",
    "LeaseqError",
    "MessageNotFound",
    "SchemaMismatch",
    "StoreError",
    "StoreUnavailable",
]


class LeaseqError(Exception):
    """Base class of every error leaseq raises on purpose."""


class ConfigurationError(LeaseqError, ValueError):
    """A bad store URL or option, or a missing extra (the message says which to install)."""


class StoreError(LeaseqError):
    """The storage engine failed; ``__cause__`` holds the engine's own error."""


class StoreUnavailable(StoreError):
    """The engine cannot be reached: refused, timed out, or locked past the retry budget."""


class SchemaMismatch(StoreError):
    """The store was written by a newer leaseq, or is not a leaseq store at all."""


class KeyExists(LeaseqError):
    """``put(if_ready="reject")`` found a READY message with that key."""

    def __init__(self, queue: str, key: str) -> None:
        super().__init__(
            f"queue {queue!r}: key {key!r} already has a ready message; "
            "use if_ready='update', 'replace' or 'keep' to accept it"
        )
        self.queue = queue
        self.key = key


class KeyInFlight(LeaseqError):
    """``put(if_in_flight="reject")`` found the key leased by a consumer."""

    def __init__(self, queue: str, key: str) -> None:
        super().__init__(
            f"queue {queue!r}: key {key!r} is leased by a consumer; "
            "use if_in_flight='update', 'buffer' or 'keep', or retry after it is acked"
        )
        self.queue = queue
        self.key = key


class LeaseLost(LeaseqError):
    """The lease's token no longer holds its message.

    ``reason`` is one of ``"expired"``, ``"claimed_again"``, ``"released"``,
    ``"acked_or_removed"``, ``"dead"``.
    """

    def __init__(self, queue: str, message_id: str, attempt: int, reason: str) -> None:
        super().__init__(
            f"queue {queue!r}: lease on message {message_id!r} (attempt {attempt}) is lost: "
            f"{reason.replace('_', ' ')}; the work may be redelivered — do not ack it, "
            "and extend() leases sooner for long jobs"
        )
        self.queue = queue
        self.message_id = message_id
        self.attempt = attempt
        self.reason = reason


class MessageNotFound(LeaseqError, LookupError):
    """No message with that id (or key) exists in the queue."""

    def __init__(self, queue: str, ident: str, what: str = "message") -> None:
        super().__init__(f"queue {queue!r}: no {what} {ident!r}; list them with dead_letters()")
        self.queue = queue
        self.ident = ident


class Empty(LeaseqError, _stdlib_queue.Empty):
    """Nothing could be claimed before the deadline (also a ``queue.Empty``)."""


class Full(LeaseqError, _stdlib_queue.Full):
    """The queue holds ``maxsize`` live messages (also a ``queue.Full``)."""


class Closed(LeaseqError):
    """The queue (or its store) has been closed."""


class DeadLettered(LeaseqError):
    """``q.result(key)``: the key's work ended in the dead letters, not in a result."""

    def __init__(self, queue: str, key: str, error: str | None) -> None:
        super().__init__(
            f"queue {queue!r}: key {key!r} went to the dead letters ({error or 'no reason'}); "
            "inspect them with dead_letters() and requeue_dead() to run it again"
        )
        self.queue = queue
        self.key = key
        self.error = error
