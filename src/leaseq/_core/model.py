"""The frozen data model: State, Message, Lease, Event, QueueStats.

``Message``, ``Lease`` and ``Event`` are ``NamedTuple`` subclasses: immutable,
cheap to build (stores construct them on every claim, so this matters), and
typed. Build them by keyword or position; stores on a hot path use
``Message._make``/``tuple.__new__`` directly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "HISTORY_LIMIT",
    "Event",
    "Lease",
    "Message",
    "Outcome",
    "QueueStats",
    "State",
    "new_message",
]

#: How many events a message's history keeps (the newest ones).
HISTORY_LIMIT = 16


class State(enum.StrEnum):
    """Where a message is. Delayed messages are READY with a future ``available_at``."""

    READY = "ready"
    LEASED = "leased"
    DEAD = "dead"


class Event(NamedTuple):
    """One entry of a message's bounded history."""

    at: float
    kind: str  # put, updated, replaced, claimed, released, expired, dead, requeued
    detail: str | None = None


class Message(NamedTuple):
    """A snapshot of one message. Reading it never changes the queue.

    ``history`` is bounded (the newest ``HISTORY_LIMIT`` events) and records
    what is news: redeliveries (``claimed`` from the second attempt on),
    ``released`` (with the error), ``expired``, ``updated``, ``buffered``,
    ``dead`` (with the reason), ``requeued``. The ordinary put and first
    claim are already told by ``created_at`` and ``attempts``, so a message
    that goes smoothly costs no history writes.
    """

    id: str
    key: str
    value: Any
    priority: int
    state: State
    attempts: int
    created_at: float
    available_at: float
    lease_expires_at: float | None
    leased_by: str | None
    last_error: str | None
    history: tuple[Event, ...] = ()
    max_attempts: int | None = None

    @property
    def dead_reason(self) -> str | None:
        """Why a dead letter died (``max_attempts``, ``lease_expired``, the caller's
        reason...), from its history; None for a live message."""
        if self.state is not State.DEAD:
            return None
        for event in reversed(self.history):
            if event.kind == "dead":
                return event.detail
        return None


def new_message(
    mid: str,
    key: str,
    value: Any,
    priority: int,
    now: float,
    available_at: float,
    max_attempts: int | None,
    history: tuple[Event, ...] = (),
) -> Message:
    """The snapshot of a message a put just created (READY, no attempts yet): what
    every store returns from a put without reading the message back."""
    return tuple.__new__(
        Message,
        (mid, key, value, priority, State.READY, 0, now, available_at, None, None, None, history,
         max_attempts),
    )  # fmt: skip


class Lease(NamedTuple):
    """Proof of holding one message: valid while ``token`` matches and time < ``expires_at``."""

    key: str
    value: Any
    token: str
    attempt: int
    expires_at: float
    message: Message

    @property
    def id(self) -> str:
        """The leased message's id."""
        return self.message.id


class Outcome(NamedTuple):
    """A key's recorded outcome in the queue's results ledger (``idempotent=True``
    workers, ``q.result(key)``).

    Written by ``ack``/``dead_letter`` in the same atomic step as the message's
    removal, so a key is either still live or settled with its outcome, never
    run-and-forgotten. ``status`` is ``"succeeded"`` (``value`` is the handler's
    return value) or ``"failed"`` (``error`` says why it died). The ledger keeps
    an outcome until ``expires_at`` (None: until pruned).
    """

    key: str
    status: str
    value: Any = None
    error: str | None = None
    recorded_at: float = 0.0
    expires_at: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class QueueStats:
    """Counts and ages of one queue at one moment.

    ``ready`` excludes delayed messages; ``total`` counts every message
    including dead letters; ``by_owner`` counts current leases per owner.
    Ages are seconds, ``None`` when there is no such message;
    ``mean_leased_age`` is the average time since the current leases were taken.
    """

    ready: int
    delayed: int
    leased: int
    dead: int
    total: int
    oldest_ready_age: float | None
    oldest_leased_age: float | None
    by_owner: dict[str, int] = field(default_factory=dict)
    mean_leased_age: float | None = None
