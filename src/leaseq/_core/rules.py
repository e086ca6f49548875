"""Every decision of the contract as pure functions (DESIGN §2).

Stores call these (or encode the same rule in SQL/Lua and are checked
against them by the conformance suite). No I/O here.

Delivery order within one queue, among messages claimable at ``now``:

1. higher ``priority`` first;
2. within a priority, the *head* before the *line*. The head holds messages
   put back in front (``release(front=True)`` and lease expiry); it is a
   stack: the one that joined it last is first (a lease joins it at its
   ``lease_expires_at``, a release at the release time; equal times: the later
   operation first).
3. the line is in order of availability: put time, or due time for delayed
   messages and delayed releases; equal times in operation order.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from typing import Any

from leaseq._core.model import QueueStats, State
from leaseq.errors import LeaseLost

__all__ = [
    "IF_IN_FLIGHT",
    "IF_READY",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "PutAction",
    "after_expiry",
    "after_release",
    "available_at",
    "check_lease",
    "check_priority",
    "decide_put",
    "logical_state",
    "logical_stats",
]

MIN_PRIORITY = -1000
MAX_PRIORITY = 1000
IF_READY = frozenset({"update", "replace", "keep", "reject"})
IF_IN_FLIGHT = frozenset({"update", "reject", "buffer", "keep"})


class PutAction(enum.Enum):
    """What a put does, given the key's current state and the caller's policies."""

    INSERT = "insert"  # key absent (or only dead): a new live message
    UPDATE = "update"  # READY: new value, same place
    REPLACE = "replace"  # READY: remove and insert afresh
    KEEP = "keep"  # READY or LEASED: return the existing message unchanged
    REJECT_READY = "reject_ready"  # raise KeyExists
    UPDATE_HELD = "update_held"  # LEASED: replace the held message's value
    REJECT_HELD = "reject_held"  # raise KeyInFlight
    BUFFER = "buffer"  # LEASED: keep as the key's single follow-up


def check_priority(priority: object) -> int:
    """Return ``priority`` if it is an int in [-1000, 1000]; raise otherwise."""
    if type(priority) is not int and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise TypeError(f"priority must be an int, not {type(priority).__name__}")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority {priority} is outside [{MIN_PRIORITY}, {MAX_PRIORITY}]")
    return priority


def check_seconds(name: str, seconds: object, *, positive: bool = False) -> float:
    """Validate a duration argument and return it as a float."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    value = float(seconds)
    if math.isnan(value) or value < 0 or (positive and value == 0) or math.isinf(value):
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number of seconds {need}, got {seconds!r}")
    return value


def available_at(now: float, delay: float | None, at: float | None) -> float:
    """When a put becomes available: ``now + delay`` or ``at`` (never both)."""
    if at is not None:
        if delay:
            raise ValueError("pass either delay= or at=, not both")
        if isinstance(at, bool) or not isinstance(at, (int, float)) or math.isnan(at):
            raise TypeError(f"at must be an epoch time in seconds, not {at!r}")
        return float(at)
    if not delay:
        return now
    return now + check_seconds("delay", delay)


def check_policies(if_ready: str, if_in_flight: str) -> None:
    """Raise ValueError for an unknown policy name."""
    if if_ready not in IF_READY:
        raise ValueError(f"if_ready must be one of {sorted(IF_READY)}, got {if_ready!r}")
    if if_in_flight not in IF_IN_FLIGHT:
        raise ValueError(
            f"if_in_flight must be one of {sorted(IF_IN_FLIGHT)}, got {if_in_flight!r}"
        )


_READY_ACTIONS = {
    "update": PutAction.UPDATE,
    "replace": PutAction.REPLACE,
    "keep": PutAction.KEEP,
    "reject": PutAction.REJECT_READY,
}
_HELD_ACTIONS = {
    "update": PutAction.UPDATE_HELD,
    "reject": PutAction.REJECT_HELD,
    "buffer": PutAction.BUFFER,
    "keep": PutAction.KEEP,
}


def decide_put(current: State | None, if_ready: str, if_in_flight: str) -> PutAction:
    """Decide a put on a key whose live message is in logical state ``current``.

    ``current`` is None when the key is absent (a dead letter with the key
    does not count: dead letters are addressed by id).
    """
    if current is None or current is State.DEAD:
        return PutAction.INSERT
    if current is State.READY:
        return _READY_ACTIONS[if_ready]
    return _HELD_ACTIONS[if_in_flight]


def logical_state(
    state: State,
    lease_expires_at: float | None,
    attempts: int,
    max_attempts: int | None,
    now: float,
) -> State:
    """The state a stored message has at ``now``: an expired lease is READY (or DEAD
    when it used its last attempt), whether or not anything rewrote it."""
    if state is State.LEASED and lease_expires_at is not None and lease_expires_at <= now:
        return after_expiry(attempts, max_attempts)
    return state


def after_expiry(attempts: int, max_attempts: int | None) -> State:
    """Where a message goes when its lease expires."""
    if max_attempts is not None and attempts >= max_attempts:
        return State.DEAD
    return State.READY


def logical_stats(
    counts: Sequence[Any], leased_rows: Iterable[Sequence[Any]], now: float
) -> QueueStats:
    """``QueueStats`` at ``now`` for a store that writes expiry lazily.

    ``counts`` is what the store counts by its stored state: (ready, oldest ready
    ``available_at``, delayed and due, oldest delayed ``available_at``, delayed not
    due, dead). Each leased row is (attempts, max_attempts, lease_expires_at,
    leased_at, owner[, follow-up due time]): an expired lease counts as READY, or
    DEAD when it used its last attempt, and then its buffered follow-up (when the
    store knows its due time) takes its place.
    """
    ready, min_ready, due, min_due, delayed, dead = counts
    oldest = [a for a in (min_ready, min_due if due else None) if a is not None]
    leased = 0
    leased_since: float | None = None
    leased_sum = 0.0
    by_owner: dict[str, int] = {}
    for row in leased_rows:
        attempts, max_attempts, exp, leased_at, owner = row[:5]
        if exp > now:
            leased += 1
            leased_since = leased_at if leased_since is None else min(leased_since, leased_at)
            leased_sum += now - leased_at
            by_owner[owner or ""] = by_owner.get(owner or "", 0) + 1
        elif after_expiry(attempts, max_attempts) is State.DEAD:
            dead += 1
            follow_due = row[5] if len(row) > 5 else None
            if follow_due is not None and follow_due <= now:
                ready += 1
                oldest.append(follow_due)
            elif follow_due is not None:
                delayed += 1
        else:
            ready += 1
            oldest.append(exp)
    ready += due
    return QueueStats(
        ready=ready,
        delayed=delayed,
        leased=leased,
        dead=dead,
        total=ready + delayed + leased + dead,
        oldest_ready_age=None if not oldest else now - min(oldest),
        oldest_leased_age=None if leased_since is None else now - leased_since,
        by_owner=by_owner,
        mean_leased_age=leased_sum / leased if leased else None,
    )


def after_release(attempts: int, max_attempts: int | None) -> State:
    """Where a message goes when its holder releases it."""
    return after_expiry(attempts, max_attempts)


def check_lease(
    *,
    queue: str,
    message_id: str,
    attempt: int,
    token: str,
    found: bool,
    state: State | None,
    held_token: str | None,
    lease_expires_at: float | None,
    now: float,
) -> None:
    """Fencing: raise ``LeaseLost`` unless ``token`` holds the message at ``now``."""
    if not found:
        raise LeaseLost(queue, message_id, attempt, "acked_or_removed")
    if held_token != token:
        if state is State.DEAD:
            raise LeaseLost(queue, message_id, attempt, "dead")
        if state is State.LEASED and held_token is not None:
            raise LeaseLost(queue, message_id, attempt, "claimed_again")
        raise LeaseLost(queue, message_id, attempt, "released")
    if state is State.DEAD:
        raise LeaseLost(queue, message_id, attempt, "dead")
    if state is not State.LEASED:
        # The token still on the message: the lease expired and nobody claimed it since.
        raise LeaseLost(queue, message_id, attempt, "expired")
    if lease_expires_at is None or lease_expires_at <= now:
        raise LeaseLost(queue, message_id, attempt, "expired")
