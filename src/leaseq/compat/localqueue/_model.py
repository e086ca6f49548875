"""localqueue's ``QueueMessage`` and ``QueueStats``, built from leaseq's model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from leaseq._core.model import Lease, Message
from leaseq._core.model import QueueStats as _LeaseqStats

__all__ = ["QueueMessage", "QueueStats", "error_dict", "from_message"]

_STATES = {"ready": "ready", "leased": "inflight", "dead": "dead"}
_TYPED = re.compile(r"^([A-Za-z_][\w.]*): (.*)$", re.S)


@dataclass
class QueueMessage:
    """One message as localqueue shows it. A message returned by ``get_message()``
    carries its lease (not shown): ``ack``/``release``/``dead_letter`` use the
    lease's token, so a consumer whose lease ran out cannot ack a redelivery."""

    id: str
    value: Any
    queue: str
    state: str
    attempts: int
    created_at: float
    available_at: float
    priority: int = 0
    leased_until: float | None = None
    leased_by: str | None = None
    dedupe_key: str | None = None
    attempt_history: list[dict[str, Any]] = field(default_factory=list)
    last_error: dict[str, Any] | None = None
    failed_at: float | None = None
    _lease: Lease | None = field(default=None, repr=False, compare=False)


def error_dict(text: str | None) -> dict[str, Any] | None:
    """leaseq's recorded error text as localqueue's structured error."""
    if text is None:
        return None
    match = _TYPED.match(text)
    if match:
        return {"type": match.group(1), "message": match.group(2), "text": text}
    return {"type": None, "message": text, "text": text}


def from_message(queue: str, msg: Message, lease: Lease | None = None) -> QueueMessage:
    """A leaseq ``Message`` (and the lease that holds it, if any) as a QueueMessage."""
    failed_at = None
    for e in reversed(msg.history):
        if e.kind in ("released", "dead") and e.detail:
            failed_at = e.at
            break
    return QueueMessage(
        id=msg.id,
        value=msg.value,
        queue=queue,
        state=_STATES[str(msg.state)],
        attempts=msg.attempts,
        created_at=msg.created_at,
        available_at=msg.available_at,
        priority=msg.priority,
        leased_until=lease.expires_at if lease is not None else msg.lease_expires_at,
        leased_by=msg.leased_by,
        dedupe_key=None if msg.key == msg.id else msg.key,
        attempt_history=[{"at": e.at, "event": e.kind, "detail": e.detail} for e in msg.history],
        last_error=error_dict(msg.last_error),
        failed_at=failed_at,
        _lease=lease,
    )


@dataclass(frozen=True)
class QueueStats:
    """localqueue's stats. ``by_worker_id`` counts the current leases per owner
    (leaseq's ``by_owner``); ``leases_by_worker_id`` counts every lease each
    ``leased_by`` id has taken and ``last_seen_by_worker_id`` is the time of its
    newest one (kept by ``PersistentQueue``, see ``WORKERS_SUFFIX``)."""

    ready: int
    delayed: int
    inflight: int
    dead: int
    total: int
    by_worker_id: dict[str, int] = field(default_factory=dict)
    leases_by_worker_id: dict[str, int] = field(default_factory=dict)
    last_seen_by_worker_id: dict[str, float] = field(default_factory=dict)
    oldest_ready_age_seconds: float | None = None
    oldest_inflight_age_seconds: float | None = None
    average_inflight_age_seconds: float | None = None

    @classmethod
    def from_leaseq(
        cls,
        st: _LeaseqStats,
        leases_by: dict[str, int] | None = None,
        last_seen: dict[str, float] | None = None,
    ) -> QueueStats:
        return cls(
            ready=st.ready,
            delayed=st.delayed,
            inflight=st.leased,
            dead=st.dead,
            total=st.total,
            by_worker_id=dict(st.by_owner),
            leases_by_worker_id=dict(leases_by or {}),
            last_seen_by_worker_id=dict(last_seen or {}),
            oldest_ready_age_seconds=st.oldest_ready_age,
            oldest_inflight_age_seconds=st.oldest_leased_age,
            average_inflight_age_seconds=st.mean_leased_age,
        )
