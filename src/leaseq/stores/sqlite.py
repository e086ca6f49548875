"""``sqlite://`` — the durable default store: one SQLite file, many threads and processes.

URLs: ``sqlite:///relative/jobs.db``, ``sqlite:////absolute/jobs.db`` (the path
is what follows ``sqlite:///``, as in SQLAlchemy), ``sqlite://`` for a private
in-memory database (one connection, shared by the threads of this store
object). Options, in the URL query or as keywords (keywords win):
``durability="normal"`` (WAL + ``synchronous=NORMAL``: a commit survives a
process crash; commits since the last checkpoint may be lost on power
failure) or ``"full"`` (fsync on every commit), ``busy_timeout`` (seconds a
write waits for the lock before ``StoreUnavailable``, default 10),
``serializer`` (``"json"`` default, ``"pickle"``, or an object with
``dumps``/``loads``; see ``leaseq.serializers``).

How the rules become SQL (schema: ``sqlite_schema.sql``; statements:
``sqlite_queries.py``): the delivery order is the order of one partial index
over claimable rows, so a claim, an ack and a release cost the same with 100
or 100,000 messages waiting. Delayed messages sit in their own index until a
claim promotes the due ones; an expired lease stays as it was written until a
claim (or a put on its key) rewrites it, and every read and write judges it by
its expiry time, so expiry needs no reaper. Keys are unique among live
messages by a unique index. The common put, claim and ack are each ONE
autocommit statement (the claim falls back to a ``BEGIN IMMEDIATE``
transaction when delayed messages fell due or leases expired; every other
primitive is one short ``BEGIN IMMEDIATE`` transaction); ``get_many`` is one
statement too. Writes of a store object go through one connection per
process (SQLite admits one writer at a time anyway), reads through one
connection per thread; acks of threads that find that writer busy commit
together in one transaction (a group commit; each ack returns after its own
commit); "database is locked" is retried with a jittered backoff for
``busy_timeout`` seconds. WAL checkpoints run on a background thread every
256 commits. Files leaseq creates use 1 KiB pages (smaller WAL frames per
commit); existing files keep their page size.

Waiting across processes: while a queue object of this process waits, a
daemon thread asks the writer connection's ``PRAGMA data_version`` (a read;
no write lock) whether another connection committed, and wakes waiters only
then (this store's own commits already woke the right waiters). On Linux it
sleeps on inotify events of the ``-wal`` file, so another process's commit is
seen at once (measured put-to-get across processes: ``python -m bench
sqlite``), with a safety re-check every 50 ms, the bound on a missed event;
an idle waiter costs ~20 wake-ups a second. Elsewhere it polls every 0.5 ms
after a change, backing off to 2 ms (~500 wake-ups a second while someone
waits). Nobody waiting: no thread runs.

Results ledger (``ack``/``dead_letter`` with ``outcome=``): table
``leaseq_outcomes``, one row per (queue, key), written in the same
``BEGIN IMMEDIATE`` transaction as the message's delete or death, so a crash
leaves both or neither (a SIGKILL test checks it); an ack without an outcome
stays the one-statement fast path. ``publish`` applies puts to several queues
in one transaction. A buffered follow-up outlives its holder: when the held
message dies (release or lease expiry on its last attempt, ``dead_letter``),
the follow-up becomes a fresh READY message of the key (the id its put
returned, attempts 0), put at the moment of death; reads show it before any
write applied an expiry. Schema version 2: a version 1 file is upgraded in
place when first opened (an older leaseq opening it then gets
``SchemaMismatch``; one that already had it open is not stopped, and mixing
versions on one file is unsupported and untested).

Limits: the ledger never shrinks by itself (``prune_outcomes`` removes
expired outcomes; one without ``expires_at`` stays until replaced); counts
(``qsize``, ``stats``), key listings and ``purge`` read every matching row;
the file must be on a local file system (WAL needs shared memory); ``now`` is
the caller's clock, so processes sharing a file need clocks that agree;
operation numbers that break ties between equal ``now`` values are wall-clock
nanoseconds, so concurrent operations of different processes are ordered by
real time; SQLite has one writer per file, so consumer processes that do
little work per message do not drain faster than one (``bench sqlite``);
values over ~1 KiB are stored in overflow pages (slower puts of large values
than with 4 KiB pages).
"""

from __future__ import annotations

import contextlib
import json
import json.scanner
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote

from leaseq._core import rules
from leaseq._core.ids import new_id, new_token
from leaseq._core.model import (
    HISTORY_LIMIT,
    Event,
    Lease,
    Message,
    Outcome,
    QueueStats,
    State,
    new_message,
)
from leaseq._waiting import Notifier
from leaseq.errors import (
    ConfigurationError,
    Full,
    KeyExists,
    KeyInFlight,
    MessageNotFound,
    StoreError,
)
from leaseq.serializers import get_codec
from leaseq.stores import sqlite_queries as Q
from leaseq.stores._sqlite_db import ChangeWatcher, Database
from leaseq.stores.base import PutRequest

__all__ = ["SQLiteStore", "open_sqlite"]

_new = tuple.__new__
_READY, _LEASED, _DEAD = State.READY, State.LEASED, State.DEAD
_STATES = (_READY, _READY, _LEASED, _DEAD)
_DURABILITY = {"normal": "NORMAL", "full": "FULL"}
_A = rules.PutAction
_json_loads = json.loads
_scan: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
_json_dumps = json.JSONEncoder(separators=(",", ":")).encode

# Notes a transaction returns, dispatched to the notifier after it commits.
_N_READY, _N_DUE, _N_SPACE = 0, 1, 2
Notes = list[tuple[Any, ...]]


def open_sqlite(parts: SplitResult, **options: Any) -> SQLiteStore:
    """Open ``sqlite://`` URLs (see the module docstring for paths and options)."""
    path = _path(parts)
    merged: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name in merged:
        if name not in ("durability", "busy_timeout"):
            raise ConfigurationError(
                f"unknown sqlite:// URL option {name!r}; use durability= or busy_timeout="
            )
    merged.update(options)
    return SQLiteStore(path, **merged)


def _path(parts: SplitResult) -> str | None:
    if parts.netloc:
        raise ConfigurationError(
            f"sqlite URL {parts.geturl()!r} has a host part; use sqlite:///relative/file.db, "
            "sqlite:////absolute/file.db or sqlite:// (in memory)"
        )
    path = unquote(parts.path)
    if path.startswith("/"):
        path = path[1:]
    return None if path in ("", ":memory:") else path


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _history(text: str) -> tuple[Event, ...]:
    return tuple([_new(Event, (e[0], e[1], e[2])) for e in _scan(text, 0)[0]])


def _append(text: str, at: float, kind: str, detail: str | None = None) -> str:
    events = _json_loads(text)
    events.append([at, kind, detail])
    if len(events) > HISTORY_LIMIT:
        del events[: len(events) - HISTORY_LIMIT]
    return str(_json_dumps(events))


def _place(row: list[Any], front: bool, at: float, seq: int) -> None:
    """Set a row's place in line: the top of the head (a stack) or the back of the line."""
    if front:
        row[Q.R_BAND], row[Q.R_ORDT], row[Q.R_ORDS] = 0, -at, -seq
    else:
        row[Q.R_BAND], row[Q.R_ORDT], row[Q.R_ORDS] = 1, at, seq


def _save_params(row: list[Any]) -> tuple[Any, ...]:
    return (
        row[Q.R_VALUE],
        row[Q.R_STATE],
        row[Q.R_ATT],
        row[Q.R_AVAIL],
        row[Q.R_BAND],
        row[Q.R_ORDT],
        row[Q.R_ORDS],
        row[Q.R_TOKEN],
        row[Q.R_BY],
        row[Q.R_LEASED_AT],
        row[Q.R_EXP],
        row[Q.R_ERR],
        row[Q.R_FOLLOW],
        row[Q.R_HIST],
        row[Q.R_ROWID],
    )


def _is_expired(row: Sequence[Any], now: float) -> bool:
    return bool(row[Q.R_STATE] == Q.ST_LEASED and row[Q.R_EXP] <= now)


def _kill(row: list[Any], at: float, reason: str, seq: int) -> None:
    """Turn a row into a dead letter (ord_* then give the order of death)."""
    row[Q.R_STATE] = Q.ST_DEAD
    row[Q.R_ORDT], row[Q.R_ORDS] = at, seq
    row[Q.R_TOKEN] = row[Q.R_BY] = row[Q.R_EXP] = None
    if row[Q.R_ERR] is None:
        row[Q.R_ERR] = reason
    row[Q.R_HIST] = _append(row[Q.R_HIST], at, "dead", reason)
    row[Q.R_FOLLOW] = 0


def _expire(row: list[Any], follow_value: Any) -> bool:
    """Apply a lease's expiry to its row (as of its expiry time); True if it died.

    The row already holds its head place (-expiry, -claim's operation number).
    """
    exp = row[Q.R_EXP]
    if rules.after_expiry(row[Q.R_ATT], row[Q.R_MAXA]) is _DEAD:
        _kill(row, exp, "lease_expired", -row[Q.R_ORDS])
        return True
    row[Q.R_TOKEN] = row[Q.R_BY] = row[Q.R_EXP] = None
    row[Q.R_STATE] = Q.ST_READY
    row[Q.R_AVAIL] = exp
    row[Q.R_HIST] = _append(row[Q.R_HIST], exp, "expired")
    if row[Q.R_FOLLOW]:
        row[Q.R_VALUE] = follow_value
        row[Q.R_FOLLOW] = 0
    return False


class SQLiteStore:
    """The ``sqlite://`` store. Thread-safe and process-safe; see the module docstring."""

    inline = False
    server_clock = False
    serializes = True

    def __init__(
        self,
        path: str | None,
        *,
        durability: str = "normal",
        busy_timeout: float | str = 10.0,
        serializer: Any = None,
    ) -> None:
        if durability not in _DURABILITY:
            raise ConfigurationError(f"durability must be 'normal' or 'full', got {durability!r}")
        try:
            budget = float(busy_timeout)
        except (TypeError, ValueError):
            raise ConfigurationError(f"busy_timeout must be seconds: {busy_timeout!r}") from None
        self._codec = get_codec(serializer)
        self._encode = self._codec.encode
        self._decode = self._codec.decode
        self.url = "sqlite://" if path is None else f"sqlite:///{path}"
        self.durability = durability
        self._db = Database(
            path, synchronous=_DURABILITY[durability], busy_timeout=budget, label=self.url
        )
        self._watcher = None if path is None else ChangeWatcher(self._db, self._changed)
        self.notifier = Notifier(watch=None if path is None else self._watch)
        self._cold: set[str] = set()  # queues whose last claim found nothing
        self._last_seq = 0
        self._seq_lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------
    def _watch(self, active: bool) -> None:
        if self._watcher is None or self._db.closed:
            return
        # On failure waiters still wake at their deadlines and meet the error on recheck.
        with contextlib.suppress(StoreError):
            self._watcher.set_active(active)

    def _changed(self) -> None:
        if self.notifier.waiting:
            self.notifier.changed(None)

    def _notify(self, queue: str, notes: Notes) -> None:
        n = self.notifier
        for note in notes:
            kind = note[0]
            if kind == _N_READY:
                n.ready(queue, note[1])
            elif kind == _N_DUE:
                n.scheduled(queue, note[1], note[2])
            else:
                n.space(queue, note[1])

    def _bump(self, n: int) -> int:
        """Reserve ``n`` operation numbers; return the last one.

        They are wall-clock nanoseconds made strictly increasing in this process
        (no counter row that every transaction would have to write). Across
        processes they follow real time, so operations that do not overlap in
        time are numbered in order; they break ties between equal ``now``s."""
        with self._seq_lock:
            last = max(time.time_ns(), self._last_seq + 1) + n - 1
            self._last_seq = last
        return last

    def _message(self, row: Sequence[Any]) -> Message:
        return _new(
            Message,
            (
                row[Q.R_ID],
                row[Q.R_KEY],
                self._decode(row[Q.R_VALUE]),
                row[Q.R_PRIO],
                _STATES[row[Q.R_STATE]],
                row[Q.R_ATT],
                float(row[Q.R_CREATED]),  # RETURNING may hand back integral REALs as ints
                float(row[Q.R_AVAIL]),
                row[Q.R_EXP] if row[Q.R_EXP] is None else float(row[Q.R_EXP]),
                row[Q.R_BY],
                row[Q.R_ERR],
                _history(row[Q.R_HIST]),
                row[Q.R_MAXA],
            ),
        )

    def _logical(self, conn: Any, queue: str, row: Sequence[Any], now: float) -> list[Any]:
        """The row as it is at ``now`` (an expired lease judged by its expiry), unchanged
        in the database."""
        return self._logical_pair(conn, queue, row, now)[0]

    def _logical_pair(
        self, conn: Any, queue: str, row: Sequence[Any], now: float
    ) -> tuple[list[Any], list[Any] | None]:
        """``_logical``, and the row of the follow-up that replaces the message when
        its lease expired on its last attempt while it held one (else None)."""
        out = list(row)
        if not _is_expired(out, now):
            return out, None
        fu = None
        if out[Q.R_FOLLOW]:
            fu = conn.execute(Q.FOLLOW_ROW, (queue, out[Q.R_KEY])).fetchone()
        exp, op = out[Q.R_EXP], -out[Q.R_ORDS]
        if not _expire(out, None if fu is None else fu[1]) or fu is None:
            return out, None
        return out, self._born_row(queue, out[Q.R_KEY], fu, exp, op, now)

    def _born_row(
        self, queue: str, key: str, fu: Sequence[Any], at: float, seq: int, now: float
    ) -> list[Any]:
        """The row ``_reborn`` would insert at ``at`` for follow-up ``fu``, seen at ``now``."""
        fid, data, priority, delay, due_at, max_attempts = fu
        req = PutRequest(None, key, priority, delay, due_at, max_attempts=max_attempts)
        # The INSERT's own parameters, so the read shows exactly what a write stores.
        params = self._insert_params(queue, fid, key, req, data, at, seq)[0]
        *_, maxa, created, avail, ord_t, ord_s, history = params
        row: list[Any] = [None] * (Q.R_HIST + 1)
        row[Q.R_ID], row[Q.R_KEY], row[Q.R_VALUE], row[Q.R_PRIO] = fid, key, data, priority
        row[Q.R_STATE] = Q.ST_READY if avail <= now else Q.ST_DELAYED
        row[Q.R_ATT], row[Q.R_MAXA], row[Q.R_CREATED], row[Q.R_AVAIL] = 0, maxa, created, avail
        row[Q.R_BAND], row[Q.R_ORDT], row[Q.R_ORDS] = 1, ord_t, ord_s
        row[Q.R_FOLLOW], row[Q.R_HIST] = 0, history
        return row

    def _reborn(self, conn: Any, queue: str, key: str, at: float, seq: int, notes: Notes) -> bool:
        """The message of ``key`` died (its row already saved DEAD): its buffered
        follow-up, if any, becomes a fresh live message put at ``at`` (its own id,
        attempts 0), as after an ack. True when there was one."""
        fu = conn.execute(Q.FOLLOW_TAKE, (queue, key)).fetchone()
        if fu is None:
            return False
        fid, data, priority, delay, due_at, max_attempts = fu
        req = PutRequest(None, key, priority, delay, due_at, max_attempts=max_attempts)
        self._insert(conn, queue, req, data, at, seq, notes, fid, key)
        return True

    # -- normalizing (inside write transactions) ----------------------------------------
    def _reap(self, conn: Any, queue: str, row: list[Any], notes: Notes) -> bool:
        """Write an expired lease's expiry; True when it died (a follow-up it held
        then takes its key, put at the expiry time, as logical reads show it)."""
        key, exp, op = row[Q.R_KEY], row[Q.R_EXP], -row[Q.R_ORDS]
        follow = None
        if row[Q.R_FOLLOW] and rules.after_expiry(row[Q.R_ATT], row[Q.R_MAXA]) is _READY:
            got = conn.execute(Q.FOLLOW_TAKE, (queue, key)).fetchone()
            follow = None if got is None else got[1]
        had_follow = row[Q.R_FOLLOW]
        dead = _expire(row, follow)
        conn.execute(Q.SAVE, _save_params(row))
        if not dead:
            notes.append((_N_READY, key))
        elif not (had_follow and self._reborn(conn, queue, key, exp, op, notes)):
            notes.append((_N_SPACE, 1))
        return dead

    def _normalize(self, conn: Any, queue: str, now: float, notes: Notes) -> None:
        """Write expired leases and promote due delayed messages (index range scans).
        Leases first: a follow-up left by a dead lease may be delayed and due already."""
        for row in conn.execute(Q.EXPIRED, (queue, now)).fetchall():
            self._reap(conn, queue, list(row), notes)
        for (key,) in conn.execute(Q.PROMOTE, (queue, now)).fetchall():
            notes.append((_N_READY, key))

    def _live_row(self, conn: Any, queue: str, key: str, now: float, notes: Notes) -> Any:
        """The key's live row at ``now`` (an expired lease written first), or None."""
        row = conn.execute(Q.LIVE_BY_KEY, (queue, key)).fetchone()
        if row is not None and _is_expired(row, now):
            row = list(row)
            if self._reap(conn, queue, row, notes):  # its follow-up may hold the key now
                return conn.execute(Q.LIVE_BY_KEY, (queue, key)).fetchone()
        return row

    # -- put -----------------------------------------------------------------------
    def put(self, queue: str, req: PutRequest, *, now: float | None, maxsize: int = 0) -> Message:
        """Apply one put atomically (see ``Store.put``). ``TypeError`` before anything
        is written when the serializer cannot hold the value."""
        data = self._encode(req.value)
        t = _now(now)
        if not maxsize:  # fast path: one autocommit INSERT unless the key is taken
            mid = new_id()
            key = mid if req.key is None else req.key
            params, msg = self._insert_params(queue, mid, key, req, data, t, self._bump(1))
            if self._db.execute_one(Q.INSERT, params)[1] == 1:
                if self.notifier.waiting:
                    if msg.available_at <= t:
                        self.notifier.ready(queue, key)
                    else:
                        self.notifier.scheduled(queue, msg.available_at, key)
                return msg
        msg, notes = self._db.write(self._put_tx, queue, req, data, t, maxsize)
        if notes and self.notifier.waiting:
            self._notify(queue, notes)
        return msg

    def put_many(
        self, queue: str, reqs: Sequence[PutRequest], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        """Apply every put or none, in one transaction."""
        encode = self._encode
        datas = [encode(req.value) for req in reqs]
        if not reqs:
            return []
        t = _now(now)
        msgs, notes = self._db.write(self._put_many_tx, queue, reqs, datas, t, maxsize)
        if self.notifier.waiting:
            if not maxsize and all(req.key is None for req in reqs):  # _insert_many's batch
                notes += [(_N_READY, m.key) for m in msgs if m.available_at <= t]
            ready = [n[1] for n in notes if n[0] == _N_READY]
            if ready:
                self.notifier.ready_many(queue, ready)
            self._notify(queue, [n for n in notes if n[0] != _N_READY])
        return msgs

    def publish(
        self, items: Sequence[tuple[str, PutRequest]], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        """One put per ``(queue, request)``, across queues, in one transaction: all or
        none (``maxsize`` bounds each target queue)."""
        encode = self._encode
        datas = [encode(req.value) for _queue, req in items]
        if not items:
            return []
        t = _now(now)
        msgs, notes = self._db.write(self._publish_tx, items, datas, t, maxsize)
        if self.notifier.waiting:
            for queue, queue_notes in notes.items():
                self._notify(queue, queue_notes)
        return msgs

    def _publish_tx(
        self,
        conn: Any,
        items: Sequence[tuple[str, PutRequest]],
        datas: list[Any],
        now: float,
        maxsize: int,
    ) -> tuple[list[Message], dict[str, Notes]]:
        seq = self._bump(len(items)) - len(items)
        notes: dict[str, Notes] = {}
        rooms: dict[str, list[int] | None] = {}
        out = []
        for i, (queue, req) in enumerate(items):
            queue_notes = notes.setdefault(queue, [])
            if queue not in rooms:
                rooms[queue] = (
                    self._room(conn, queue, now, maxsize, queue_notes) if maxsize else None
                )
            room = rooms[queue]
            out.append(
                self._put_one(
                    conn, queue, req, datas[i], now, seq + i + 1, room, maxsize, queue_notes
                )
            )
        return out, notes

    def _room(self, conn: Any, queue: str, now: float, maxsize: int, notes: Notes) -> list[int]:
        self._normalize(conn, queue, now, notes)
        live = conn.execute(Q.COUNT_LIVE, (queue,)).fetchone()[0]
        return [maxsize - live]

    def _put_tx(
        self, conn: Any, queue: str, req: PutRequest, data: Any, now: float, maxsize: int
    ) -> tuple[Message, Notes]:
        notes: Notes = []
        room = self._room(conn, queue, now, maxsize, notes) if maxsize else None
        seq = self._bump(1)
        msg = self._put_one(conn, queue, req, data, now, seq, room, maxsize, notes)
        return msg, notes

    def _put_many_tx(
        self,
        conn: Any,
        queue: str,
        reqs: Sequence[PutRequest],
        datas: list[Any],
        now: float,
        maxsize: int,
    ) -> tuple[list[Message], Notes]:
        notes: Notes = []
        seq = self._bump(len(reqs)) - len(reqs)
        if not maxsize and all(req.key is None for req in reqs):
            return self._insert_many(conn, queue, reqs, datas, now, seq, notes), notes
        room = self._room(conn, queue, now, maxsize, notes) if maxsize else None
        out = []
        for i, req in enumerate(reqs):
            out.append(
                self._put_one(conn, queue, req, datas[i], now, seq + i + 1, room, maxsize, notes)
            )
        return out, notes

    def _insert_many(
        self,
        conn: Any,
        queue: str,
        reqs: Sequence[PutRequest],
        datas: list[Any],
        now: float,
        seq: int,
        notes: Notes,
    ) -> list[Message]:
        """Key-less puts cannot collide: one ``executemany``. This is the bulk-load
        path, so it is written tight: one base id per batch (``<id>.<n>``), one
        shared history tuple, no per-message calls for puts without a delay."""
        params: list[tuple[Any, ...]] = []
        out: list[Message] = []
        append_param, append_msg = params.append, out.append
        hist_text = "[]"  # the put itself is not news (DESIGN §11)
        history: tuple[Event, ...] = ()
        base = new_id()
        ready = Q.ST_READY
        for i, req in enumerate(reqs):
            mid = f"{base}.{i:x}"
            seq += 1
            if req.delay or req.at is not None:
                p, msg = self._insert_params(queue, mid, mid, req, datas[i], now, seq)
                if msg.available_at > now:
                    notes.append((_N_DUE, msg.available_at, mid))
            else:
                prio, maxa = req.priority, req.max_attempts
                p = (mid, queue, mid, datas[i], prio, ready, maxa, now, now, now, seq, hist_text)
                msg = new_message(mid, mid, req.value, prio, now, now, maxa, history)
            append_param(p)
            append_msg(msg)
        conn.executemany(Q.INSERT, params)
        return out

    @staticmethod
    def _insert_params(
        queue: str, mid: str, key: str, req: PutRequest, data: Any, now: float, seq: int
    ) -> tuple[tuple[Any, ...], Message]:
        plain = not req.delay and req.at is None
        avail = now if plain else rules.available_at(now, req.delay, req.at)
        due = avail <= now
        hist = "[]"  # the put itself is not news (DESIGN §11)
        params = (
            mid,
            queue,
            key,
            data,
            req.priority,
            Q.ST_READY if due else Q.ST_DELAYED,
            req.max_attempts,
            now,
            avail,
            now if due else avail,  # the line: put time, or due time when delayed
            seq,
            hist,
        )
        msg = new_message(mid, key, req.value, req.priority, now, avail, req.max_attempts)
        return params, msg

    def _insert(
        self,
        conn: Any,
        queue: str,
        req: PutRequest,
        data: Any,
        now: float,
        seq: int,
        notes: Notes,
        mid: str | None = None,
        key: str | None = None,
    ) -> Message | None:
        """Insert a new live message; None when the key already has one."""
        mid = mid or new_id()
        key = key if key is not None else (mid if req.key is None else req.key)
        params, msg = self._insert_params(queue, mid, key, req, data, now, seq)
        if conn.execute(Q.INSERT, params).rowcount != 1:
            return None
        if msg.available_at <= now:
            notes.append((_N_READY, key))
        else:
            notes.append((_N_DUE, msg.available_at, key))
        return msg

    def _put_one(
        self,
        conn: Any,
        queue: str,
        req: PutRequest,
        data: Any,
        now: float,
        seq: int,
        room: list[int] | None,
        maxsize: int,
        notes: Notes,
    ) -> Message:
        msg = self._insert(conn, queue, req, data, now, seq, notes)
        if msg is not None:
            if room is not None:
                room[0] -= 1
                if room[0] < 0:
                    raise Full(
                        f"queue {queue!r} holds {maxsize} live messages (maxsize); "
                        "ack some, or put with block=True to wait"
                    )
            return msg
        assert req.key is not None  # only a keyed put can collide
        return self._put_existing(conn, queue, req, data, now, seq, room, maxsize, notes)

    def _put_existing(
        self,
        conn: Any,
        queue: str,
        req: PutRequest,
        data: Any,
        now: float,
        seq: int,
        room: list[int] | None,
        maxsize: int,
        notes: Notes,
    ) -> Message:
        key = req.key
        assert key is not None
        row = self._live_row(conn, queue, key, now, notes)
        if row is None:  # the held lease had just expired for good: the key is free
            return self._put_one(conn, queue, req, data, now, seq, room, maxsize, notes)
        row = list(row)
        current = _LEASED if row[Q.R_STATE] == Q.ST_LEASED else _READY
        action = rules.decide_put(current, req.if_ready, req.if_in_flight)
        if action is _A.UPDATE or action is _A.UPDATE_HELD:
            if row[Q.R_FOLLOW]:
                conn.execute(Q.FOLLOW_DROP, (queue, key))
            row[Q.R_VALUE], row[Q.R_FOLLOW] = data, 0
            row[Q.R_HIST] = _append(row[Q.R_HIST], now, "updated")
            conn.execute(Q.SET_VALUE, (data, 0, row[Q.R_HIST], row[Q.R_ROWID]))
        elif action is _A.REPLACE:
            conn.execute(Q.DELETE_ROW, (row[Q.R_ROWID],))
            msg = self._insert(conn, queue, req, data, now, seq, notes)
            assert msg is not None
            return msg
        elif action is _A.BUFFER:
            return self._buffer(conn, queue, req, data, now, row)
        elif action is _A.REJECT_READY:
            raise KeyExists(queue, key)
        elif action is _A.REJECT_HELD:
            raise KeyInFlight(queue, key)
        return self._message(row)

    def _buffer(
        self, conn: Any, queue: str, req: PutRequest, data: Any, now: float, row: list[Any]
    ) -> Message:
        """Keep ``req`` as the leased key's single follow-up (it keeps the id it got first)."""
        key = row[Q.R_KEY]
        fid = conn.execute(
            Q.FOLLOW_UPSERT,
            (queue, key, new_id(), data, req.priority, req.delay, req.at, req.max_attempts),
        ).fetchone()[0]
        row[Q.R_HIST] = _append(row[Q.R_HIST], now, "buffered")
        conn.execute(Q.SET_VALUE, (row[Q.R_VALUE], 1, row[Q.R_HIST], row[Q.R_ROWID]))
        return new_message(fid, key, req.value, req.priority, now, now, req.max_attempts)

    # -- claims --------------------------------------------------------------------
    def claim(
        self,
        queue: str,
        *,
        now: float | None,
        lease_timeout: float,
        owner: str | None,
        limit: int = 1,
    ) -> list[Lease]:
        """Lease up to ``limit`` messages in delivery order (see ``Store.claim``).

        After a claim that found nothing, the next one first asks (with a read,
        no lock) whether anything is claimable: idle claimers take no write lock.
        """
        t = _now(now)
        if queue in self._cold and not self._db.read(_probe, queue, t, snapshot=False):
            return []
        # One statement first; the transaction when it claims nothing (nothing
        # ready, or a delayed message fell due or a lease expired: written first).
        notes: Notes = []
        leases = (
            self._claim_fast(queue, t, lease_timeout, owner)
            if limit == 1
            else self._claim_many_fast(queue, t, lease_timeout, owner, limit)
        )
        if not leases:
            leases, notes = self._db.write(self._claim_tx, queue, t, lease_timeout, owner, limit)
        if leases:
            self._cold.discard(queue)
        else:
            self._cold.add(queue)
        if self.notifier.waiting:
            self._notify(queue, notes)
            for lease in leases:
                self.notifier.scheduled(queue, lease.expires_at, lease.key)
        return leases

    def _claim_fast(self, queue: str, now: float, timeout: float, owner: str | None) -> list[Lease]:
        token = new_token()
        exp = now + timeout
        params = (token, owner, now, exp, self._bump(1), queue)
        rows = self._db.execute_one(Q.CLAIM_FAST, params)[0]
        return [self._lease(rows[0], token, exp)] if rows else []

    def _claim_many_fast(
        self, queue: str, now: float, timeout: float, owner: str | None, limit: int
    ) -> list[Lease]:
        # One statement instead of a transaction of limit + 5 (get_many, a worker's
        # shared claim); empty when nothing is ready or the guards send us to _claim_tx.
        tokens = json.dumps([new_token() for _ in range(limit)])
        exp = now + timeout
        base = self._bump(limit) - limit
        params = (tokens, owner, now, exp, base, queue, limit)
        rows = self._db.execute_one(Q.CLAIM_MANY_FAST, params)[0]
        rows.sort(key=_claim_order)
        return [self._lease(row, row[Q.R_TOKEN], exp) for row in rows]

    def _claim_tx(
        self, conn: Any, queue: str, now: float, timeout: float, owner: str | None, limit: int
    ) -> tuple[list[Lease], Notes]:
        notes: Notes = []
        self._normalize(conn, queue, now, notes)
        seq = self._bump(limit)
        exp = now + timeout
        if limit == 1:
            token = new_token()
            row = conn.execute(Q.CLAIM_NEXT, (token, owner, now, exp, seq, queue)).fetchone()
            return ([] if row is None else [self._lease(row, token, exp)]), notes
        rowids = [r[0] for r in conn.execute(Q.NEXT_ROWIDS, (queue, limit)).fetchall()]
        leases = []
        for i, rowid in enumerate(rowids):
            token = new_token()
            op = seq - limit + 1 + i  # later claims get later numbers (the head is a stack)
            row = conn.execute(Q.CLAIM_ROW, (token, owner, now, exp, op, rowid)).fetchone()
            leases.append(self._lease(row, token, exp))
        return leases, notes

    def _lease(self, row: Sequence[Any], token: str, exp: float) -> Lease:
        msg = self._message(row)
        return _new(Lease, (msg.key, msg.value, token, msg.attempts, exp, msg))

    def claim_key(
        self,
        queue: str,
        key: str,
        *,
        now: float | None,
        lease_timeout: float,
        owner: str | None,
    ) -> Lease | None:
        """Lease the key's message if it is claimable now (see ``Store.claim_key``)."""
        lease, notes = self._db.write(
            self._claim_key_tx, queue, key, _now(now), lease_timeout, owner
        )
        if self.notifier.waiting:
            self._notify(queue, notes)
            if lease is not None:
                self.notifier.scheduled(queue, lease.expires_at, key)
        return lease

    def _claim_key_tx(
        self, conn: Any, queue: str, key: str, now: float, timeout: float, owner: str | None
    ) -> tuple[Lease | None, Notes]:
        notes: Notes = []
        row = self._live_row(conn, queue, key, now, notes)
        if row is None:
            return None, notes
        state = row[Q.R_STATE]
        if state == Q.ST_LEASED or (state == Q.ST_DELAYED and row[Q.R_AVAIL] > now):
            return None, notes
        seq = self._bump(1)
        token = new_token()
        exp = now + timeout
        got = conn.execute(Q.CLAIM_ROW, (token, owner, now, exp, seq, row[Q.R_ROWID])).fetchone()
        return self._lease(got, token, exp), notes

    # -- lease operations ----------------------------------------------------------
    def _held(self, conn: Any, queue: str, lease: Lease, now: float) -> list[Any]:
        """Fencing: the row ``lease`` holds at ``now``, or LeaseLost."""
        row = conn.execute(Q.BY_ID, (lease.message.id, queue)).fetchone()
        if (
            row is not None
            and row[Q.R_STATE] == Q.ST_LEASED
            and row[Q.R_TOKEN] == lease.token
            and now < row[Q.R_EXP]
        ):
            return list(row)
        _lost(queue, lease, row, now)
        raise AssertionError("unreachable")  # _lost raised

    def renew(self, queue: str, lease: Lease, *, now: float | None, seconds: float) -> Lease:
        """Set the lease's expiry to ``now + seconds`` (same token)."""
        new = self._db.write(self._renew_tx, queue, lease, _now(now), seconds)
        if self.notifier.waiting:  # a shortened lease: waiters may need to wake sooner
            self.notifier.scheduled(queue, new.expires_at, new.key)
        return new

    def _renew_tx(self, conn: Any, queue: str, lease: Lease, now: float, seconds: float) -> Lease:
        row = self._held(conn, queue, lease, now)
        seq = self._bump(1)
        exp = now + seconds
        conn.execute(Q.RENEW, (exp, seq, row[Q.R_ROWID]))
        row[Q.R_EXP] = exp
        return lease._replace(expires_at=exp, message=self._message(row))

    def ack(
        self, queue: str, lease: Lease, *, now: float | None, outcome: Outcome | None = None
    ) -> None:
        """Delete the leased message (its buffered follow-up, if any, becomes live).

        With ``outcome``: recorded in the results ledger in the same transaction
        (``TypeError`` before anything is written when its value cannot be
        serialized). Without: one autocommit DELETE when there is no follow-up."""
        t = _now(now)
        if outcome is None:
            # Shared: acks of several threads (a worker's slots) commit together.
            fast = self._db.execute_shared(Q.ACK_FAST, (lease.message.id, queue, lease.token, t))
            if fast:
                if self.notifier.waiting:
                    self.notifier.space(queue)
                return
            record = None
        else:
            record = self._outcome_params(queue, outcome)
        notes = self._db.write(self._ack_tx, queue, lease, t, record)
        if self.notifier.waiting:
            self._notify(queue, notes)
            if outcome is not None:
                self.notifier.settled(queue, outcome.key)

    def _outcome_params(self, queue: str, outcome: Outcome) -> tuple[Any, ...]:
        data = self._encode(outcome.value)
        return (
            queue,
            outcome.key,
            outcome.status,
            data,
            outcome.error,
            outcome.recorded_at,
            outcome.expires_at,
        )

    def _ack_tx(
        self, conn: Any, queue: str, lease: Lease, now: float, record: tuple[Any, ...] | None
    ) -> Notes:
        got = conn.execute(Q.ACK, (lease.message.id, queue, lease.token, now)).fetchone()
        if got is None:
            _lost(queue, lease, conn.execute(Q.BY_ID, (lease.message.id, queue)).fetchone(), now)
            raise AssertionError("unreachable")  # _lost raised
        if record is not None:
            conn.execute(Q.OUTCOME_PUT, record)
        key, follow = got
        notes: Notes = []
        if follow:
            fu = conn.execute(Q.FOLLOW_TAKE, (queue, key)).fetchone()
            if fu is not None:
                fid, value, priority, delay, at, max_attempts = fu
                req = PutRequest(None, key, priority, delay, at, max_attempts=max_attempts)
                self._insert(conn, queue, req, value, now, self._bump(1), notes, fid, key)
                return notes
        notes.append((_N_SPACE, 1))
        return notes

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
        """Put the message back, or to DEAD (``max_attempts``) after its last attempt."""
        msg, notes = self._db.write(self._release_tx, queue, lease, _now(now), delay, front, error)
        if self.notifier.waiting:
            self._notify(queue, notes)
        return msg

    def _release_tx(
        self,
        conn: Any,
        queue: str,
        lease: Lease,
        now: float,
        delay: float,
        front: bool,
        error: str | None,
    ) -> tuple[Message, Notes]:
        row = self._held(conn, queue, lease, now)
        seq = self._bump(1)
        row[Q.R_TOKEN] = row[Q.R_BY] = row[Q.R_EXP] = None
        if error is not None:
            row[Q.R_ERR] = error
        notes: Notes = []
        if rules.after_release(row[Q.R_ATT], row[Q.R_MAXA]) is _DEAD:
            # Its buffered follow-up (a newer put) is not lost: it becomes the key's message.
            follow = row[Q.R_FOLLOW]
            _kill(row, now, "max_attempts", seq)
            conn.execute(Q.SAVE, _save_params(row))
            if not (follow and self._reborn(conn, queue, row[Q.R_KEY], now, seq, notes)):
                notes.append((_N_SPACE, 1))
            return self._message(row), notes
        row[Q.R_HIST] = _append(row[Q.R_HIST], now, "released", error)
        if row[Q.R_FOLLOW]:
            got = conn.execute(Q.FOLLOW_TAKE, (queue, row[Q.R_KEY])).fetchone()
            row[Q.R_VALUE] = row[Q.R_VALUE] if got is None else got[1]
            row[Q.R_FOLLOW] = 0
        at = now + delay if delay > 0 else now
        row[Q.R_STATE] = Q.ST_DELAYED if delay > 0 else Q.ST_READY
        row[Q.R_AVAIL] = at
        _place(row, front, at, seq)
        notes.append((_N_DUE, at, row[Q.R_KEY]) if delay > 0 else (_N_READY, row[Q.R_KEY]))
        conn.execute(Q.SAVE, _save_params(row))
        return self._message(row), notes

    def dead_letter(
        self,
        queue: str,
        lease: Lease,
        *,
        now: float | None,
        error: str | None = None,
        outcome: Outcome | None = None,
    ) -> Message:
        """Move the leased message to DEAD with ``error`` as its reason (a buffered
        follow-up becomes a fresh live message of its key); with ``outcome``,
        record it in the same transaction."""
        record = None if outcome is None else self._outcome_params(queue, outcome)
        msg, notes = self._db.write(self._dead_letter_tx, queue, lease, _now(now), error, record)
        if self.notifier.waiting:
            self._notify(queue, notes)
            if outcome is not None:
                self.notifier.settled(queue, outcome.key)
        return msg

    def _dead_letter_tx(
        self,
        conn: Any,
        queue: str,
        lease: Lease,
        now: float,
        error: str | None,
        record: tuple[Any, ...] | None,
    ) -> tuple[Message, Notes]:
        row = self._held(conn, queue, lease, now)
        seq = self._bump(1)
        follow = row[Q.R_FOLLOW]
        if error is not None:
            row[Q.R_ERR] = error
        _kill(row, now, error if error is not None else "dead_lettered", seq)
        conn.execute(Q.SAVE, _save_params(row))
        if record is not None:
            conn.execute(Q.OUTCOME_PUT, record)
        notes: Notes = []
        if not (follow and self._reborn(conn, queue, row[Q.R_KEY], now, seq, notes)):
            notes.append((_N_SPACE, 1))
        return self._message(row), notes

    # -- results ledger ------------------------------------------------------------
    def get_outcome(self, queue: str, key: str, *, now: float | None) -> Outcome | None:
        """The key's recorded outcome; None when absent or ``expires_at <= now``."""
        got = self._db.read(_scalar_row, Q.OUTCOME_GET, (queue, key), snapshot=False)
        if got is None:
            return None
        status, data, error, recorded_at, expires_at = got
        if expires_at is not None and expires_at <= _now(now):
            return None
        return Outcome(key, status, self._decode(data), error, recorded_at, expires_at)

    def prune_outcomes(self, queue: str, *, before: float) -> int:
        """Remove outcomes whose ``expires_at`` is at or before ``before``; return how many."""
        n: int = self._db.write(_rowcount, Q.PRUNE_OUTCOMES, (queue, before))
        return n

    def requeue_dead(
        self,
        queue: str,
        message_id: str,
        *,
        now: float | None,
        delay: float = 0.0,
        reset_attempts: bool = True,
    ) -> Message:
        """Put a dead letter back at the end of the line (after ``delay``)."""
        msg, notes = self._db.write(
            self._requeue_tx, queue, message_id, _now(now), delay, reset_attempts
        )
        if self.notifier.waiting:
            self._notify(queue, notes)
        return msg

    def _requeue_tx(
        self, conn: Any, queue: str, mid: str, now: float, delay: float, reset: bool
    ) -> tuple[Message, Notes]:
        notes: Notes = []
        row = conn.execute(Q.BY_ID, (mid, queue)).fetchone()
        if row is not None and _is_expired(row, now):
            row = list(row)
            self._reap(conn, queue, row, notes)
        if row is None or row[Q.R_STATE] != Q.ST_DEAD:
            raise MessageNotFound(queue, mid, "dead letter")
        row = list(row)
        if conn.execute(Q.KEY_IS_LIVE, (queue, row[Q.R_KEY])).fetchone() is not None:
            raise KeyExists(queue, row[Q.R_KEY])
        seq = self._bump(1)
        at = now + delay
        row[Q.R_STATE] = Q.ST_DELAYED if delay > 0 else Q.ST_READY
        row[Q.R_AVAIL] = at
        if reset:
            row[Q.R_ATT] = 0
        row[Q.R_HIST] = _append(row[Q.R_HIST], now, "requeued")
        _place(row, False, at, seq)
        conn.execute(Q.SAVE, _save_params(row))
        notes.append((_N_DUE, at, row[Q.R_KEY]) if delay > 0 else (_N_READY, row[Q.R_KEY]))
        return self._message(row), notes

    # -- reads (one snapshot each; they never write) ----------------------------------
    def get_message(self, queue: str, message_id: str, *, now: float | None) -> Message | None:
        """Read one message by id, as it is at ``now``."""
        return self._db.read(self._get_message_rx, queue, message_id, _now(now))

    def _get_message_rx(self, conn: Any, queue: str, mid: str, now: float) -> Message | None:
        row = conn.execute(Q.BY_ID, (mid, queue)).fetchone()
        if row is not None:
            return self._message(self._logical(conn, queue, row, now))
        # A buffered follow-up exists once its holder died, even if nothing wrote that yet.
        got = conn.execute(Q.FOLLOW_KEY_BY_ID, (mid, queue)).fetchone()
        holder = None if got is None else conn.execute(Q.LIVE_BY_KEY, (queue, got[0])).fetchone()
        if holder is None:
            return None
        born = self._logical_pair(conn, queue, holder, now)[1]
        return None if born is None else self._message(born)

    def peek_key(self, queue: str, key: str, *, now: float | None) -> Message | None:
        """Read the key's live message (READY or LEASED), or None."""
        return self._db.read(self._peek_rx, queue, key, _now(now))

    def _peek_rx(self, conn: Any, queue: str, key: str, now: float) -> Message | None:
        row = conn.execute(Q.LIVE_BY_KEY, (queue, key)).fetchone()
        if row is None:
            return None
        row, born = self._logical_pair(conn, queue, row, now)
        if row[Q.R_STATE] == Q.ST_DEAD:
            return None if born is None else self._message(born)
        return self._message(row)

    def keys(self, queue: str, state: State, *, now: float | None) -> list[str]:
        """Keys in ``state`` at ``now``: READY in delivery order then delayed by due time."""
        return self._db.read(self._keys_rx, queue, State(state), _now(now))

    def _keys_rx(self, conn: Any, queue: str, state: State, now: float) -> list[str]:
        if state is _DEAD:
            return [m.key for m in self._dead_rx(conn, queue, now, None)]
        claimable: list[tuple[Any, ...]] = []
        delayed: list[tuple[Any, ...]] = []
        leased: list[str] = []
        for row in conn.execute(Q.LIVE_ROWS, (queue,)):
            st = row[Q.R_STATE]
            if st == Q.ST_LEASED:
                if row[Q.R_EXP] > now:
                    leased.append(row[Q.R_KEY])
                elif rules.after_expiry(row[Q.R_ATT], row[Q.R_MAXA]) is _READY:
                    claimable.append(_order_key(row))
                elif row[Q.R_FOLLOW]:  # died at expiry: its follow-up holds the key
                    born = self._logical_pair(conn, queue, row, now)[1]
                    if born is not None and born[Q.R_STATE] == Q.ST_READY:
                        claimable.append(_order_key(born))
                    elif born is not None:
                        delayed.append(
                            (born[Q.R_AVAIL], -born[Q.R_PRIO], born[Q.R_ORDS], born[Q.R_KEY])
                        )
            elif st == Q.ST_DELAYED and row[Q.R_AVAIL] > now:
                delayed.append((row[Q.R_AVAIL], -row[Q.R_PRIO], row[Q.R_ORDS], row[Q.R_KEY]))
            else:
                claimable.append(_order_key(row))
        if state is _LEASED:
            return leased
        claimable.sort()
        delayed.sort()
        return [k[-1] for k in claimable] + [k[-1] for k in delayed]

    def count_ready(self, queue: str, *, now: float | None) -> int:
        """How many messages are claimable now."""
        n: int = self._db.read(_scalar, Q.COUNT_READY, (queue, _now(now)), snapshot=False)
        return n

    def count_live(self, queue: str, *, now: float | None) -> int:
        """How many live messages (ready, delayed, leased) the queue holds."""
        return self._db.read(self._count_live_rx, queue, _now(now))

    @staticmethod
    def _count_live_rx(conn: Any, queue: str, now: float) -> int:
        live: int = conn.execute(Q.COUNT_LIVE, (queue,)).fetchone()[0]
        gone: int = conn.execute(Q.COUNT_EXPIRED_EXHAUSTED, (queue, now)).fetchone()[0]
        return live - gone

    def dead_letters(
        self, queue: str, *, now: float | None, limit: int | None = None
    ) -> list[Message]:
        """Dead letters, oldest death first."""
        return self._db.read(self._dead_rx, queue, _now(now), limit)

    def _dead_rx(self, conn: Any, queue: str, now: float, limit: int | None) -> list[Message]:
        if limit is None:
            rows = [list(r) for r in conn.execute(Q.DEAD_ROWS, (queue,))]
        else:
            rows = [list(r) for r in conn.execute(Q.DEAD_ROWS_LIMIT, (queue, limit))]
        for r in conn.execute(Q.EXPIRED_EXHAUSTED, (queue, now)).fetchall():
            rows.append(self._logical(conn, queue, r, now))
        rows.sort(key=lambda r: (r[Q.R_ORDT], r[Q.R_ORDS]))
        if limit is not None:
            rows = rows[:limit]
        return [self._message(r) for r in rows]

    def stats(self, queue: str, *, now: float | None) -> QueueStats:
        """Counts and ages at ``now``."""
        return self._db.read(_stats_rx, queue, _now(now))

    def next_due(self, queue: str, *, now: float | None, key: str | None = None) -> float | None:
        """The earliest moment a delayed message falls due or a lease expires (for the
        queue or one key); it may already have passed, meaning "recheck now"."""
        return self._db.read(_next_due_rx, queue, _now(now), key, snapshot=False)

    def queues(self) -> list[str]:
        """Names of the queues that hold at least one message."""
        return self._db.read(lambda conn: sorted(r[0] for r in conn.execute(Q.QUEUES)))

    # -- maintenance ---------------------------------------------------------------
    def purge(self, queue: str) -> int:
        """Remove every message of the queue (live and dead); return how many."""
        n = self._db.write(_purge_tx, queue)
        if n:
            self._cold.add(queue)
            if self.notifier.waiting:
                self.notifier.space(queue, n)
        return n

    def prune_dead(self, queue: str, *, before: float) -> int:
        """Remove dead letters that died at or before ``before``; return how many."""
        return self._db.write(self._prune_tx, queue, before)

    def _prune_tx(self, conn: Any, queue: str, before: float) -> int:
        notes: Notes = []
        for row in conn.execute(Q.EXPIRED, (queue, before)).fetchall():
            self._reap(conn, queue, list(row), notes)
        n: int = conn.execute(Q.PRUNE_DEAD, (queue, before)).rowcount
        return n

    def close(self) -> None:
        """Stop the change watcher and close this process's connections. Idempotent."""
        if self._watcher is not None:
            self._watcher.stop()
        self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r}, durability={self.durability!r})"


# -- helpers run inside read/write transactions ------------------------------------------
def _claim_order(row: Sequence[Any]) -> Any:
    # ord_s holds minus the claim's operation number, given in delivery order.
    return -row[Q.R_ORDS]


def _probe(conn: Any, queue: str, now: float) -> bool:
    return bool(conn.execute(Q.PROBE, (queue, now)).fetchone()[0])


def _scalar(conn: Any, sql: str, params: tuple[Any, ...]) -> Any:
    return conn.execute(sql, params).fetchone()[0]


def _scalar_row(conn: Any, sql: str, params: tuple[Any, ...]) -> Any:
    return conn.execute(sql, params).fetchone()


def _rowcount(conn: Any, sql: str, params: tuple[Any, ...]) -> int:
    n: int = conn.execute(sql, params).rowcount
    return n


def _order_key(row: Sequence[Any]) -> tuple[Any, ...]:
    """A claimable row's place in the delivery order, ending with its key."""
    return (-row[Q.R_PRIO], row[Q.R_BAND], row[Q.R_ORDT], row[Q.R_ORDS], row[Q.R_KEY])


def _lost(queue: str, lease: Lease, row: Sequence[Any] | None, now: float) -> None:
    rules.check_lease(
        queue=queue,
        message_id=lease.message.id,
        attempt=lease.attempt,
        token=lease.token,
        found=row is not None,
        state=None if row is None else _STATES[row[Q.R_STATE]],
        held_token=None if row is None else row[Q.R_TOKEN],
        lease_expires_at=None if row is None else row[Q.R_EXP],
        now=now,
    )


def _stats_rx(conn: Any, queue: str, now: float) -> QueueStats:
    counts = conn.execute(Q.COUNTS, (queue, now)).fetchone()
    return rules.logical_stats(counts, conn.execute(Q.LEASED_ROWS, (queue,)), now)


def _next_due_rx(conn: Any, queue: str, now: float, key: str | None) -> float | None:
    # Past moments are returned too (as the memory store does for timers it has
    # not applied yet): the waiter rechecks at once and its claim applies them.
    if key is None:
        delayed, expiry = conn.execute(Q.NEXT_DUE, (queue,)).fetchone()
        dues = [d for d in (delayed, expiry) if d is not None]
        return min(dues) if dues else None
    row = conn.execute(Q.LIVE_BY_KEY, (queue, key)).fetchone()
    if row is None:
        return None
    st = row[Q.R_STATE]
    due: float | None = (
        row[Q.R_AVAIL] if st == Q.ST_DELAYED else row[Q.R_EXP] if st == Q.ST_LEASED else None
    )
    return due


def _purge_tx(conn: Any, queue: str) -> int:
    n: int = conn.execute(Q.PURGE, (queue,)).rowcount
    conn.execute(Q.PURGE_FOLLOW, (queue,))
    return n
