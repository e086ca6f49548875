"""Decisions shared by the async and the generated sync code of ``postgresql://``.

Plain functions over rows (lists in ``_sql.COLS`` order): how a message looks
at a given moment, what an expiry, a death or a release writes, how errors map
to leaseq's. No I/O here, so the async source and its sync twin cannot drift.
"""

from __future__ import annotations

import contextlib
import json
import select
from collections.abc import Sequence
from typing import Any

from leaseq._core import rules
from leaseq._core.model import HISTORY_LIMIT, Event, Lease, Message, Outcome, State
from leaseq.errors import StoreError, StoreUnavailable

_new = tuple.__new__
_READY, _LEASED, _DEAD = State.READY, State.LEASED, State.DEAD
_STATES = (_READY, _READY, _LEASED, _DEAD)

(
    R_ID,
    R_KEY,
    R_VALUE,
    R_PRIO,
    R_STATE,
    R_ATT,
    R_MAXA,
    R_CREATED,
    R_AVAIL,
    R_BAND,
    R_ORDT,
    R_ORDS,
    R_TOKEN,
    R_BY,
    R_LEASED_AT,
    R_EXP,
    R_ERR,
    R_FOLLOW,
    R_HIST,
) = range(19)
ST_READY, ST_DELAYED, ST_LEASED, ST_DEAD = 0, 1, 2, 3

# Notes a transaction returns, dispatched to the notifier after it commits.
N_READY, N_DUE, N_SPACE, N_SETTLED = 0, 1, 2, 3
Notes = list[tuple[Any, ...]]

START_HINT = (
    "is PostgreSQL running and reachable? Start it (e.g. `pg_ctlcluster 15 main start` "
    "or `docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres`) and check "
    "the URL"
)


def history(events: Any) -> tuple[Event, ...]:
    return tuple([_new(Event, (float(e[0]), e[1], e[2])) for e in events])


def append(row: list[Any], at: float, kind: str, detail: str | None = None) -> None:
    events = list(row[R_HIST])
    events.append([at, kind, detail])
    if len(events) > HISTORY_LIMIT:
        del events[: len(events) - HISTORY_LIMIT]
    row[R_HIST] = events


def message(row: Sequence[Any], decode: Any) -> Message:
    exp = row[R_EXP]
    return _new(
        Message,
        (
            row[R_ID],
            row[R_KEY],
            decode(row[R_VALUE]),
            row[R_PRIO],
            _STATES[row[R_STATE]],
            row[R_ATT],
            row[R_CREATED],
            row[R_AVAIL],
            exp,
            row[R_BY],
            row[R_ERR],
            history(row[R_HIST]),
            row[R_MAXA],
        ),
    )


def lease(row: Sequence[Any], decode: Any) -> Lease:
    msg = message(row, decode)
    return _new(Lease, (msg.key, msg.value, row[R_TOKEN], msg.attempts, row[R_EXP], msg))


def place(row: list[Any], front: bool, at: float, seq: int) -> None:
    """Set a row's place in line: the top of the head (a stack) or the back of the line."""
    if front:
        row[R_BAND], row[R_ORDT], row[R_ORDS] = 0, -at, -seq
    else:
        row[R_BAND], row[R_ORDT], row[R_ORDS] = 1, at, seq


def is_expired(row: Sequence[Any], now: float) -> bool:
    return bool(row[R_STATE] == ST_LEASED and row[R_EXP] <= now)


def kill(row: list[Any], at: float, reason: str, seq: int) -> None:
    """Turn a row into a dead letter (ord_* then give the order of death)."""
    row[R_STATE] = ST_DEAD
    row[R_BAND] = 1
    row[R_ORDT], row[R_ORDS] = at, seq
    row[R_TOKEN] = row[R_BY] = row[R_EXP] = row[R_LEASED_AT] = None
    if row[R_ERR] is None:
        row[R_ERR] = reason
    append(row, at, "dead", reason)
    row[R_FOLLOW] = False


def expire(row: list[Any], follow_value: Any) -> bool:
    """Apply a lease's expiry to its row (as of its expiry time); True if it died.

    The row already holds its head place (-expiry, -claim's operation number).
    The token stays, so its holder learns "expired" rather than "released".
    """
    exp = row[R_EXP]
    if rules.after_expiry(row[R_ATT], row[R_MAXA]) is _DEAD:
        kill(row, exp, "lease_expired", -row[R_ORDS])
        return True
    row[R_BY] = row[R_EXP] = None
    row[R_STATE] = ST_READY
    row[R_AVAIL] = exp
    append(row, exp, "expired")
    if row[R_FOLLOW]:
        row[R_VALUE] = follow_value
        row[R_FOLLOW] = False
    return False


def save_params(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": row[R_ID],
        "value": row[R_VALUE],
        "state": row[R_STATE],
        "attempts": row[R_ATT],
        "available_at": row[R_AVAIL],
        "band": row[R_BAND],
        "ord_t": row[R_ORDT],
        "ord_s": row[R_ORDS],
        "token": row[R_TOKEN],
        "leased_by": row[R_BY],
        "leased_at": row[R_LEASED_AT],
        "lease_expires_at": row[R_EXP],
        "last_error": row[R_ERR],
        "follow": bool(row[R_FOLLOW]),
        "history": json.dumps(row[R_HIST]),
    }


def bury_params(queue: str, row: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": row[R_ID],
        "queue": queue,
        "key": row[R_KEY],
        "value": row[R_VALUE],
        "priority": row[R_PRIO],
        "attempts": row[R_ATT],
        "max_attempts": row[R_MAXA],
        "created_at": row[R_CREATED],
        "available_at": row[R_AVAIL],
        "ord_t": row[R_ORDT],
        "ord_s": row[R_ORDS],
        "last_error": row[R_ERR],
        "history": json.dumps(row[R_HIST]),
    }


def lost(queue: str, lease: Lease, row: Sequence[Any] | None, now: float) -> None:
    """Raise the right ``LeaseLost`` for a lease whose token does not hold its row."""
    rules.check_lease(
        queue=queue,
        message_id=lease.message.id,
        attempt=lease.attempt,
        token=lease.token,
        found=row is not None,
        state=None
        if row is None
        else rules.logical_state(_STATES[row[R_STATE]], row[R_EXP], row[R_ATT], row[R_MAXA], now),
        held_token=None if row is None else row[R_TOKEN],
        lease_expires_at=None if row is None else row[R_EXP],
        now=now,
    )


def order_key(row: Sequence[Any]) -> tuple[Any, ...]:
    """A claimable row's place in the delivery order, ending with its key."""
    return (-row[R_PRIO], row[R_BAND], row[R_ORDT], row[R_ORDS], row[R_KEY])


def live_keys(rows: Sequence[Sequence[Any]], state: State, now: float) -> list[str]:
    """Keys in ``state`` at ``now``: READY in delivery order then delayed by due time."""
    claimable: list[tuple[Any, ...]] = []
    delayed: list[tuple[Any, ...]] = []
    leased: list[str] = []
    for row in rows:
        st = row[R_STATE]
        if st == ST_LEASED:
            if row[R_EXP] > now:
                leased.append(row[R_KEY])
            elif rules.after_expiry(row[R_ATT], row[R_MAXA]) is _READY:
                claimable.append(order_key(row))
        elif st == ST_DELAYED and row[R_AVAIL] > now:
            delayed.append((row[R_AVAIL], -row[R_PRIO], row[R_ORDS], row[R_KEY]))
        else:
            claimable.append(order_key(row))
    if state is _LEASED:
        return leased
    claimable.sort()
    delayed.sort()
    return [k[-1] for k in claimable] + [k[-1] for k in delayed]


def outcome_params(queue: str, outcome: Outcome, encode: Any) -> dict[str, Any]:
    return {
        "queue": queue,
        "okey": outcome.key,
        "status": outcome.status,
        "ovalue": encode(outcome.value),
        "error": outcome.error,
        "recorded_at": outcome.recorded_at,
        "expires_at": outcome.expires_at,
    }


def outcome(row: Sequence[Any], decode: Any) -> Outcome:
    key, status, value, error, recorded_at, expires_at = row
    return Outcome(key, status, decode(value), error, recorded_at, expires_at)


def store_error(exc: BaseException, label: str, what: str = "") -> StoreError:
    """Map a driver error: lost/refused connections are ``StoreUnavailable``."""
    import psycopg
    import psycopg_pool

    doing = f" ({what})" if what else ""
    if isinstance(
        exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.errors.AdminShutdown)
    ):
        return StoreUnavailable(f"postgres store {label}{doing}: {exc}; {START_HINT}")
    return StoreError(f"postgres store {label}{doing}: {exc}")


def is_connection_error(exc: BaseException) -> bool:
    import psycopg
    import psycopg_pool

    return isinstance(exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout))


def close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


def stale(conn: Any) -> bool:
    """True when an idle pooled connection is known dead without a round trip: the
    server closed it (restart, ``pg_terminate_backend``) and its farewell is waiting
    on the socket. An idle autocommit connection that does not LISTEN has nothing
    else to read, so a write sent on it would fail *before* running: better to take
    another connection than to report a commit in doubt that is not."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
