"""The sync primitives of ``postgresql://``. GENERATED from ``leaseq/stores/postgres/_aio.py``
by ``scripts/unasync.py`` — do not edit; edit the async source and run
``make generate``."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from psycopg_pool import ConnectionPool

from leaseq._core import rules
from leaseq._core.ids import new_id, new_token
from leaseq._core.model import Lease, Message, Outcome, QueueStats, State, new_message
from leaseq.errors import (
    Closed,
    Full,
    KeyExists,
    KeyInFlight,
    MessageNotFound,
    SchemaMismatch,
    StoreError,
)
from leaseq.stores.base import PutRequest
from leaseq.stores.postgres import _logic as L
from leaseq.stores.postgres._sql import MIGRATIONS, SCHEMA_VERSION, qualified, schema_sql

__all__ = ["PostgresCore"]

_A = rules.PutAction
_READY, _LEASED, _DEAD = State.READY, State.LEASED, State.DEAD
_N_READY, _N_DUE, _N_SPACE, _N_SETTLED = L.N_READY, L.N_DUE, L.N_SPACE, L.N_SETTLED
Notes = L.Notes
# A keyed put that finds the key's row deleted under it tries the insert again.
_PUT_TRIES = 20


class PostgresCore:
    """Every Store primitive as a coroutine over one ``ConnectionPool``."""

    def __init__(self, config: Any, notifier: Any, schema_state: dict[str, Any]) -> None:
        self.config = config
        self.notifier = notifier
        self.url = config.url
        self._label = config.url
        self._schema_state = schema_state  # shared with the store: migrate once
        self._codec = config.codec
        self._encode = config.codec.pack
        self._decode = config.codec.unpack
        self._sql = qualified(config.schema)
        self._chan = config.channel
        self._origin = config.origin
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()  # one pool, one schema check per object
        self._closed = False
        # Sync store: idle connections kept out of the pool (see ``_checkin``).
        self._spares: collections.deque[Any] = collections.deque()

    # -- plumbing ------------------------------------------------------------------
    def _payload(self, queue: str) -> str:
        return f"{queue}\n{self._origin}"

    def _get_pool(self) -> ConnectionPool:
        if self._closed:
            raise Closed(f"store {self._label} is closed; open a new queue")
        pool = self._pool
        if pool is not None:
            return pool
        with self._pool_lock:
            if self._pool is None:
                if not self._schema_state.get("ready"):
                    self._ensure_schema()
                pool = ConnectionPool(
                    self.config.conninfo,
                    min_size=self.config.pool_min,
                    max_size=self.config.pool_max,
                    kwargs=self.config.connect_kwargs(),
                    timeout=self.config.pool_timeout,
                    name="leaseq",
                    open=False,
                )
                pool.open()
                self._pool = pool
            return self._pool

    def _run(self, fn: Callable[..., Any], *args: Any, tx: bool, retry: bool) -> Any:
        """Run ``fn(conn, *args)`` on a pooled connection (in one transaction when
        ``tx``); driver errors become StoreError/StoreUnavailable. ``retry``: after a lost
        connection, check the pool (dropping dead connections) and run once more."""
        import psycopg

        pool = self._get_pool()
        for attempt in (0, 1):
            try:
                conn = self._checkout(pool)
                clean = False
                try:
                    if not tx:
                        result = fn(conn, *args)
                    else:
                        with conn.transaction():
                            result = fn(conn, *args)
                    clean = True
                    return result
                finally:
                    self._checkin(pool, conn, clean)
            except psycopg.Error as exc:
                if self._closed:  # closed under a running call (PoolClosed)
                    raise Closed(f"store {self._label} is closed; open a new queue") from exc
                if not L.is_connection_error(exc):
                    raise L.store_error(exc, self._label) from exc
                # The server restarted or killed our connections: the pool keeps
                # idle ones that are dead too; drop them so the next call is fresh.
                pool.check()
                if attempt or not retry:
                    raise L.store_error(exc, self._label) from exc
        raise AssertionError("unreachable")

    def _checkout(self, pool: ConnectionPool) -> Any:
        """The spare idle connection when there is one (see ``_checkin``), else the
        pool's; a spare the server closed meanwhile goes back to the pool to die."""
        try:
            conn = self._spares.pop()
        except IndexError:
            return self._getconn(pool)
        if L.stale(conn):
            conn.close()
            pool.putconn(conn)
            return self._getconn(pool)
        return conn

    def _checkin(self, pool: ConnectionPool, conn: Any, clean: bool) -> None:
        """After a clean call, keep the (idle, autocommit) connection as the spare
        instead of returning it: the pool's checkout and return cost a sync caller
        about as much client time as leaseq's whole statement. Any thread may take
        the spare next; at most one or two are kept (the check is not atomic, a
        race only keeps one more), and ``close_pool`` returns them."""
        if clean and not self._spares and not self._closed:
            self._spares.append(conn)
        else:
            pool.putconn(conn)

    def _getconn(self, pool: ConnectionPool) -> Any:
        """A pooled connection that is not known dead (see ``_logic.stale``)."""
        for _ in range(self.config.pool_max + 1):
            conn = pool.getconn()
            if not L.stale(conn):
                return conn
            conn.close()  # killed while idle: the pool discards closed connections
            pool.putconn(conn)
        pool.check()
        return pool.getconn()

    def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        result, notes = self._run(self._noted, fn, args, tx=True, retry=False)
        if notes and self.notifier.waiting:
            self._notify(notes)
        return result

    def _noted(self, conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run a write transaction's body; NOTIFY other processes (delivered at commit)."""
        t, seq = self._clock(conn, args[0])
        notes: Notes = []
        result = fn(conn, t, seq, notes, *args[1:])
        for queue in {n[1] for n in notes}:
            conn.execute(self._sql.NOTIFY, {"chan": self._chan, "payload": self._payload(queue)})
        return result, notes

    def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._run(fn, *args, tx=True, retry=True)

    def _one(self, sql: str, params: dict[str, Any], *, retry: bool) -> Any:
        return self._run(_fetchone, sql, params, tx=False, retry=retry)

    def _clock(self, conn: Any, now: float | None) -> tuple[float, int]:
        cur = conn.execute(self._sql.CLOCK, {"now": now})
        t, seq = cur.fetchone()
        return float(t), int(seq)

    def _notify(self, notes: Notes) -> None:
        n = self.notifier
        for note in notes:
            kind, queue = note[0], note[1]
            if kind == _N_READY:
                n.ready(queue, note[2])
            elif kind == _N_DUE:
                n.scheduled(queue, note[2], note[3])
            elif kind == _N_SPACE:
                n.space(queue, note[2])
            else:
                n.settled(queue, note[2])

    # -- schema --------------------------------------------------------------------
    def _ensure_schema(self, force: bool = False) -> int:
        """Create or migrate the schema (under an advisory lock) unless it is current;
        return its version. ``force`` migrates even with ``migrate=False``. One direct
        connection, so a refused connection fails at once."""
        import psycopg

        try:
            conn = psycopg.Connection.connect(self.config.conninfo, **self.config.connect_kwargs())
        except psycopg.Error as exc:
            raise L.store_error(exc, self._label, "connecting") from exc
        try:
            with conn.transaction():
                version = self._migrate(conn, force or self.config.migrate)
        except psycopg.Error as exc:
            raise L.store_error(exc, self._label, "checking the schema") from exc
        finally:
            conn.close()
        self._schema_state["ready"] = True
        return version

    def _migrate(self, conn: Any, allowed: bool) -> int:
        schema = self.config.schema
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"leaseq-schema:{schema}",))
        cur = conn.execute("SELECT to_regclass(quote_ident(%s) || '.leaseq_version')", (schema,))
        found = (cur.fetchone())[0]
        if found is None:
            if not allowed:
                raise SchemaMismatch(
                    f"postgres store {self._label}: schema {schema!r} has no leaseq tables and "
                    "migrate=False; run `leaseq migrate URL` (or store.migrate()) first"
                )
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(schema_sql())
            return SCHEMA_VERSION
        cur = conn.execute("SELECT max(version) FROM leaseq_version")
        version = int((cur.fetchone())[0] or 0)
        if version > SCHEMA_VERSION:
            raise SchemaMismatch(
                f"postgres store {self._label}: schema version {version} was written by a "
                f"newer leaseq (this one knows up to {SCHEMA_VERSION}); upgrade leaseq — the "
                "schema was left unchanged"
            )
        if version < SCHEMA_VERSION and not allowed:
            raise SchemaMismatch(
                f"postgres store {self._label}: schema version {version} is older than "
                f"{SCHEMA_VERSION} and migrate=False; run `leaseq migrate URL` first"
            )
        while version < SCHEMA_VERSION:
            conn.execute(MIGRATIONS[version])
            version += 1
            conn.execute("UPDATE leaseq_version SET version = %s", (version,))
        return version

    # -- put -----------------------------------------------------------------------
    def _insert_params(
        self, queue: str, mid: str, key: str, req: PutRequest, data: Any, now: Any, seq: Any
    ) -> dict[str, Any]:
        return {
            "now": now,
            "at": req.at,
            "delay": float(req.delay or 0.0),
            "id": mid,
            "queue": queue,
            "key": key,
            "value": data,
            "priority": req.priority,
            "max_attempts": req.max_attempts,
            "seq": seq,
            "chan": self._chan,
            "payload": self._payload(queue),
        }

    def put(self, queue: str, req: PutRequest, *, now: float | None, maxsize: int = 0) -> Message:
        """Apply one put atomically (see ``Store.put``): one INSERT unless the key is
        taken or the queue is bounded, then one transaction."""
        data = self._encode(req.value)
        if not maxsize:
            mid = new_id()
            key = mid if req.key is None else req.key
            row = self._one(
                self._sql.INSERT,
                self._insert_params(queue, mid, key, req, data, now, None),
                retry=False,
            )
            if row is not None:
                created, avail = row[0], row[1]
                msg = new_message(
                    mid, key, req.value, req.priority, created, avail, req.max_attempts
                )
                if self.notifier.waiting:
                    if avail <= created:
                        self.notifier.ready(queue, key)
                    else:
                        self.notifier.scheduled(queue, avail, key)
                return msg
        out: Message = self._write(self._put_tx, now, queue, req, data, maxsize)
        return out

    def put_in(
        self, conn: Any, queue: str, req: PutRequest, *, now: float | None, maxsize: int = 0
    ) -> Message:
        """Apply one put inside the caller's own open transaction on ``conn`` (a psycopg
        connection of the same database): the message exists iff that transaction
        commits. The caller commits or rolls back; waiters everywhere are woken by
        the NOTIFY PostgreSQL delivers at that commit (nothing is announced before)."""
        import psycopg

        data = self._encode(req.value)
        self._get_pool()  # the schema exists (created on first use)
        try:
            t, seq = self._clock(conn, now)
            notes: Notes = []
            msg: Message = self._put_tx(conn, t, seq, notes, queue, req, data, maxsize)
            # Another origin than ours: this process's LISTEN thread wakes its own
            # waiters too, once the caller commits.
            payload = f"{queue}\ntx"
            conn.execute(self._sql.NOTIFY, {"chan": self._chan, "payload": payload})
        except psycopg.Error as exc:
            raise L.store_error(exc, self._label, "put in the caller's transaction") from exc
        return msg

    def put_many(
        self, queue: str, reqs: Sequence[PutRequest], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        """Apply every put or none, in one transaction."""
        datas = [self._encode(req.value) for req in reqs]
        if not reqs:
            return []
        items = [(queue, req, data) for req, data in zip(reqs, datas, strict=True)]
        out: list[Message] = self._write(self._publish_tx, now, items, maxsize)
        return out

    def publish(
        self, items: Sequence[tuple[str, PutRequest]], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        """One put per ``(queue, request)``, across queues, all or none (one transaction)."""
        encoded = [(queue, req, self._encode(req.value)) for queue, req in items]
        if not encoded:
            return []
        out: list[Message] = self._write(self._publish_tx, now, encoded, maxsize)
        return out

    def _put_tx(
        self,
        conn: Any,
        t: float,
        seq: int,
        notes: Notes,
        queue: str,
        req: PutRequest,
        data: Any,
        maxsize: int,
    ) -> Message:
        room = self._room(conn, queue, t, maxsize) if maxsize else None
        return self._put_one(conn, queue, req, data, t, seq, room, maxsize, notes)

    def _publish_tx(
        self,
        conn: Any,
        t: float,
        seq: int,
        notes: Notes,
        items: Sequence[tuple[str, PutRequest, Any]],
        maxsize: int,
    ) -> list[Message]:
        rooms: dict[str, list[int] | None] = {}
        out = []
        for i, (queue, req, data) in enumerate(items):
            if queue not in rooms:
                rooms[queue] = self._room(conn, queue, t, maxsize) if maxsize else None
            msg = self._put_one(
                conn, queue, req, data, t, seq + 1 + i % 4095, rooms[queue], maxsize, notes
            )
            out.append(msg)
        return out

    def _room(self, conn: Any, queue: str, now: float, maxsize: int) -> list[int]:
        lock = f"leaseq-room:{self.config.schema}.{queue}"
        conn.execute(self._sql.ROOM_LOCK, {"lock": lock})
        cur = conn.execute(self._sql.COUNT_LIVE, {"queue": queue, "now": now})
        live = (cur.fetchone())[0]
        return [maxsize - int(live)]

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
        params = self._insert_params(queue, mid, key, req, data, now, seq)
        cur = conn.execute(self._sql.INSERT, params)
        row = cur.fetchone()
        if row is None:
            return None
        avail = row[1]
        if avail <= now:
            notes.append((_N_READY, queue, key))
        else:
            notes.append((_N_DUE, queue, avail, key))
        return new_message(mid, key, req.value, req.priority, now, avail, req.max_attempts)

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
        for _ in range(_PUT_TRIES):
            msg = self._insert(conn, queue, req, data, now, seq, notes)
            if msg is not None:
                if room is not None:
                    room[0] -= 1
                    if room[0] < 0:
                        raise _full(queue, maxsize)
                return msg
            assert req.key is not None  # only a keyed put can collide
            got = self._put_existing(conn, queue, req, data, now, seq, notes)
            if got is not None:
                return got
        raise StoreError(f"postgres store {self._label}: key {req.key!r} kept changing; retry")

    def _live_row(
        self, conn: Any, queue: str, key: str, now: float, notes: Notes
    ) -> list[Any] | None:
        """The key's live row at ``now``, locked (an expired lease written first), or None."""
        cur = conn.execute(self._sql.LIVE_BY_KEY_LOCK, {"queue": queue, "key": key})
        row = cur.fetchone()
        if row is None:
            return None
        out = list(row)
        if L.is_expired(out, now) and self._reap(conn, queue, out, notes):
            return None
        return out

    def _put_existing(
        self,
        conn: Any,
        queue: str,
        req: PutRequest,
        data: Any,
        now: float,
        seq: int,
        notes: Notes,
    ) -> Message | None:
        """Apply a put to the key's live row; None when the key turned out to be free."""
        key = req.key
        assert key is not None
        row = self._live_row(conn, queue, key, now, notes)
        if row is None:
            return None
        current = _LEASED if row[L.R_STATE] == L.ST_LEASED else _READY
        action = rules.decide_put(current, req.if_ready, req.if_in_flight)
        if action is _A.UPDATE or action is _A.UPDATE_HELD:
            if row[L.R_FOLLOW]:
                conn.execute(self._sql.FOLLOW_DROP, {"queue": queue, "key": key})
            row[L.R_VALUE], row[L.R_FOLLOW] = data, False
            L.append(row, now, "updated")
            conn.execute(self._sql.SET_VALUE, _value_params(row))
        elif action is _A.REPLACE:
            conn.execute(self._sql.DELETE_ROW, {"id": row[L.R_ID]})
            msg = self._insert(conn, queue, req, data, now, seq, notes)
            assert msg is not None
            return msg
        elif action is _A.BUFFER:
            return self._buffer(conn, queue, req, data, now, row)
        elif action is _A.REJECT_READY:
            raise KeyExists(queue, key)
        elif action is _A.REJECT_HELD:
            raise KeyInFlight(queue, key)
        return L.message(row, self._decode)

    def _buffer(
        self, conn: Any, queue: str, req: PutRequest, data: Any, now: float, row: list[Any]
    ) -> Message:
        """Keep ``req`` as the leased key's single follow-up (it keeps the id it got first)."""
        key = row[L.R_KEY]
        params = {
            "queue": queue,
            "key": key,
            "id": new_id(),
            "value": data,
            "priority": req.priority,
            "delay": float(req.delay or 0.0),
            "at": req.at,
            "max_attempts": req.max_attempts,
        }
        cur = conn.execute(self._sql.FOLLOW_UPSERT, params)
        fid = (cur.fetchone())[0]
        L.append(row, now, "buffered")
        row[L.R_FOLLOW] = True
        conn.execute(self._sql.SET_VALUE, _value_params(row))
        return new_message(fid, key, req.value, req.priority, now, now, req.max_attempts)

    # -- expiry, written lazily ----------------------------------------------------
    def _reap(self, conn: Any, queue: str, row: list[Any], notes: Notes) -> bool:
        """Write an expired (locked) lease's expiry; True when it died (a follow-up it
        held then becomes a fresh message, put at the expiry time)."""
        got = None
        key = row[L.R_KEY]
        if row[L.R_FOLLOW]:
            cur = conn.execute(self._sql.FOLLOW_TAKE, {"queue": queue, "key": key})
            got = cur.fetchone()
        dead = L.expire(row, None if got is None else got[1])
        if dead:
            at, seq = row[L.R_ORDT], row[L.R_ORDS] + 1
            self._bury(conn, queue, row, at, seq, notes, follow=got)
        else:
            conn.execute(self._sql.SAVE, L.save_params(row))
            notes.append((_N_READY, queue, key))
        return dead

    def _bury(
        self,
        conn: Any,
        queue: str,
        row: list[Any],
        at: float,
        seq: int,
        notes: Notes,
        *,
        follow: Any = None,
        take_follow: bool = False,
    ) -> None:
        """Move a (killed) row out of the hot table into the dead letters. Its buffered
        follow-up (``follow``, or taken here with ``take_follow``) outlives it: a fresh
        READY message of the key, put at ``at``, as after an ack."""
        key = row[L.R_KEY]
        if take_follow:
            cur = conn.execute(self._sql.FOLLOW_TAKE, {"queue": queue, "key": key})
            follow = cur.fetchone()
        conn.execute(self._sql.DELETE_ROW, {"id": row[L.R_ID]})
        conn.execute(self._sql.BURY, L.bury_params(queue, row))
        if follow is None:
            notes.append((_N_SPACE, queue, 1))
            return
        fid, value, priority, delay, when, max_attempts = follow
        req = PutRequest(None, key, priority, delay, when, max_attempts=max_attempts)
        self._insert(conn, queue, req, value, at, seq, notes, fid, key)

    def _normalize(self, conn: Any, queue: str, now: float, notes: Notes) -> None:
        """Promote due delayed messages and write (at most 256) expired leases."""
        cur = conn.execute(self._sql.PROMOTE, {"queue": queue, "now": now})
        for (key,) in cur.fetchall():
            notes.append((_N_READY, queue, key))
        cur = conn.execute(self._sql.EXPIRED, {"queue": queue, "now": now})
        for row in cur.fetchall():
            self._reap(conn, queue, list(row), notes)

    # -- claims --------------------------------------------------------------------
    def _claim_params(
        self,
        queue: str,
        now: float | None,
        seq: int | None,
        timeout: float,
        owner: str | None,
        limit: int,
        fast: bool,
    ) -> dict[str, Any]:
        return {
            "now": now,
            "seq": seq,
            "queue": queue,
            "limit": limit,
            "fast": fast,
            "tokens": [new_token() for _ in range(limit)],
            "owner": owner,
            "timeout": float(timeout),
        }

    def _leases(self, rows: Sequence[Any]) -> list[Lease]:
        ordered = sorted(rows, key=lambda r: r[-2])  # by row number: delivery order
        return [L.lease(r, self._decode) for r in ordered]

    def claim(
        self,
        queue: str,
        *,
        now: float | None,
        lease_timeout: float,
        owner: str | None,
        limit: int = 1,
    ) -> list[Lease]:
        """Lease up to ``limit`` messages in delivery order (see ``Store.claim``): one
        statement, unless delayed messages fell due or leases expired (one transaction
        writes those first)."""
        return self._claim_now(queue, now, lease_timeout, owner, limit)

    def _claim_now(
        self, queue: str, now: float | None, lease_timeout: float, owner: str | None, limit: int
    ) -> list[Lease]:
        params = self._claim_params(queue, now, None, lease_timeout, owner, limit, True)
        rows = self._run(_fetchall, self._sql.CLAIM, params, tx=False, retry=True)
        if rows[0][0] is None:  # nothing claimed; the last column: is there work?
            if not rows[0][-1]:
                return []
            rows = self._write(self._claim_tx, now, queue, lease_timeout, owner, limit)
        leases = self._leases(rows)
        if leases and self.notifier.waiting:
            for lease in leases:
                self.notifier.scheduled(queue, lease.expires_at, lease.key)
        return leases

    def _claim_tx(
        self,
        conn: Any,
        t: float,
        seq: int,
        notes: Notes,
        queue: str,
        timeout: float,
        owner: str | None,
        limit: int,
    ) -> list[Any]:
        self._normalize(conn, queue, t, notes)
        params = self._claim_params(queue, t, seq, timeout, owner, limit, False)
        cur = conn.execute(self._sql.CLAIM, params)
        return [r for r in cur.fetchall() if r[0] is not None]

    def claim_key(
        self,
        queue: str,
        key: str,
        *,
        now: float | None,
        lease_timeout: float,
        owner: str | None,
    ) -> Lease | None:
        """Lease the key's message if it is claimable now (see ``Store.claim_key``): one
        statement, unless its delayed message fell due or its lease expired."""
        params = {
            "now": now,
            "queue": queue,
            "key": key,
            "token": new_token(),
            "owner": owner,
            "timeout": float(lease_timeout),
        }
        row = self._one(self._sql.CLAIM_KEY, params, retry=True)
        lease: Lease | None = None
        if row[0] is not None:
            lease = L.lease(row, self._decode)
        elif row[-1]:
            lease = self._write(self._claim_key_tx, now, queue, key, lease_timeout, owner)
        if lease is not None and self.notifier.waiting:
            self.notifier.scheduled(queue, lease.expires_at, key)
        return lease

    def _claim_key_tx(
        self,
        conn: Any,
        t: float,
        seq: int,
        notes: Notes,
        queue: str,
        key: str,
        timeout: float,
        owner: str | None,
    ) -> Lease | None:
        row = self._live_row(conn, queue, key, t, notes)
        if row is None:
            return None
        state = row[L.R_STATE]
        if state == L.ST_LEASED or (state == L.ST_DELAYED and row[L.R_AVAIL] > t):
            return None
        params = {
            "token": new_token(),
            "owner": owner,
            "now": t,
            "timeout": float(timeout),
            "seq": seq,
            "id": row[L.R_ID],
        }
        cur = conn.execute(self._sql.CLAIM_ROW, params)
        return L.lease(cur.fetchone(), self._decode)

    # -- lease operations ----------------------------------------------------------
    def _held(self, conn: Any, queue: str, lease: Lease, now: float) -> list[Any]:
        """Fencing: the (locked) row ``lease`` holds at ``now``, or LeaseLost."""
        ids = {"id": lease.message.id, "queue": queue}
        cur = conn.execute(self._sql.BY_ID_LOCK, ids)
        row = cur.fetchone()
        if (
            row is not None
            and row[L.R_STATE] == L.ST_LEASED
            and row[L.R_TOKEN] == lease.token
            and now < row[L.R_EXP]
        ):
            return list(row)
        if row is None:
            cur = conn.execute(self._sql.DEAD_BY_ID, ids)
            row = cur.fetchone()
        L.lost(queue, lease, row, now)
        raise AssertionError("unreachable")  # lost() raised

    def renew(self, queue: str, lease: Lease, *, now: float | None, seconds: float) -> Lease:
        """Set the lease's expiry to ``now + seconds`` (same token)."""
        new: Lease = self._write(self._renew_tx, now, queue, lease, seconds)
        if self.notifier.waiting:  # a shortened lease: waiters may need to wake sooner
            self.notifier.scheduled(queue, new.expires_at, new.key)
        return new

    def _renew_tx(
        self, conn: Any, t: float, seq: int, notes: Notes, queue: str, lease: Lease, secs: float
    ) -> Lease:
        row = self._held(conn, queue, lease, t)
        exp = t + secs
        conn.execute(self._sql.RENEW, {"exp": exp, "seq": seq, "id": row[L.R_ID]})
        row[L.R_EXP] = exp
        return lease._replace(expires_at=exp, message=L.message(row, self._decode))

    def ack(
        self, queue: str, lease: Lease, *, now: float | None, outcome: Outcome | None = None
    ) -> None:
        """Delete the leased message (its buffered follow-up becomes live); with
        ``outcome``, record it in the same statement or transaction."""
        params: dict[str, Any] = {
            "id": lease.message.id,
            "queue": queue,
            "token": lease.token,
            "now": now,
        }
        if outcome is None:
            row = self._one(self._sql.ACK, params, retry=False)
        else:
            params.update(L.outcome_params(queue, outcome, self._encode))
            params.update(chan=self._chan, payload=self._payload(queue))
            row = self._one(self._sql.ACK_OUTCOME, params, retry=False)
        if row is not None:
            if self.notifier.waiting:
                self.notifier.space(queue)
                if outcome is not None:
                    self.notifier.settled(queue, outcome.key)
            return
        self._write(self._ack_tx, now, queue, lease, outcome)

    def _ack_tx(
        self,
        conn: Any,
        t: float,
        seq: int,
        notes: Notes,
        queue: str,
        lease: Lease,
        outcome: Outcome | None,
    ) -> None:
        row = self._held(conn, queue, lease, t)
        key = row[L.R_KEY]
        conn.execute(self._sql.DELETE_ROW, {"id": row[L.R_ID]})
        self._record(conn, queue, outcome, notes)
        if row[L.R_FOLLOW]:
            cur = conn.execute(self._sql.FOLLOW_TAKE, {"queue": queue, "key": key})
            fu = cur.fetchone()
            if fu is not None:
                fid, value, priority, delay, at, max_attempts = fu
                req = PutRequest(None, key, priority, delay, at, max_attempts=max_attempts)
                self._insert(conn, queue, req, value, t, seq, notes, fid, key)
                return
        notes.append((_N_SPACE, queue, 1))

    def _record(self, conn: Any, queue: str, outcome: Outcome | None, notes: Notes) -> None:
        if outcome is not None:
            conn.execute(self._sql.OUTCOME_UPSERT, L.outcome_params(queue, outcome, self._encode))
            notes.append((_N_SETTLED, queue, outcome.key))

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
        msg: Message = self._write(self._release_tx, now, queue, lease, delay, front, error)
        return msg

    def _release_tx(
        self,
        conn: Any,
        t: float,
        seq: int,
        notes: Notes,
        queue: str,
        lease: Lease,
        delay: float,
        front: bool,
        error: str | None,
    ) -> Message:
        row = self._held(conn, queue, lease, t)
        row[L.R_TOKEN] = row[L.R_BY] = row[L.R_EXP] = None
        if error is not None:
            row[L.R_ERR] = error
        if rules.after_release(row[L.R_ATT], row[L.R_MAXA]) is _DEAD:
            had = bool(row[L.R_FOLLOW])
            L.kill(row, t, "max_attempts", seq)
            self._bury(conn, queue, row, t, seq + 1, notes, take_follow=had)
            return L.message(row, self._decode)
        L.append(row, t, "released", error)
        if row[L.R_FOLLOW]:
            cur = conn.execute(self._sql.FOLLOW_TAKE, {"queue": queue, "key": row[L.R_KEY]})
            got = cur.fetchone()
            row[L.R_VALUE] = row[L.R_VALUE] if got is None else got[1]
            row[L.R_FOLLOW] = False
        at = t + delay if delay > 0 else t
        row[L.R_STATE] = L.ST_DELAYED if delay > 0 else L.ST_READY
        row[L.R_AVAIL] = at
        L.place(row, front, at, seq)
        conn.execute(self._sql.SAVE, L.save_params(row))
        if delay > 0:
            notes.append((_N_DUE, queue, at, row[L.R_KEY]))
        else:
            notes.append((_N_READY, queue, row[L.R_KEY]))
        return L.message(row, self._decode)

    def dead_letter(
        self,
        queue: str,
        lease: Lease,
        *,
        now: float | None,
        error: str | None = None,
        outcome: Outcome | None = None,
    ) -> Message:
        """Move the leased message to DEAD with ``error`` as its reason (and record
        ``outcome`` in the same transaction)."""
        msg: Message = self._write(self._dead_letter_tx, now, queue, lease, error, outcome)
        return msg

    def _dead_letter_tx(
        self,
        conn: Any,
        t: float,
        seq: int,
        notes: Notes,
        queue: str,
        lease: Lease,
        error: str | None,
        outcome: Outcome | None,
    ) -> Message:
        row = self._held(conn, queue, lease, t)
        if error is not None:
            row[L.R_ERR] = error
        had = bool(row[L.R_FOLLOW])
        L.kill(row, t, error if error is not None else "dead_lettered", seq)
        self._bury(conn, queue, row, t, seq + 1, notes, take_follow=had)
        self._record(conn, queue, outcome, notes)
        return L.message(row, self._decode)

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
        msg: Message = self._write(self._requeue_tx, now, queue, message_id, delay, reset_attempts)
        return msg

    def _requeue_tx(
        self,
        conn: Any,
        t: float,
        seq: int,
        notes: Notes,
        queue: str,
        mid: str,
        delay: float,
        reset: bool,
    ) -> Message:
        ids = {"id": mid, "queue": queue}
        cur = conn.execute(self._sql.BY_ID_LOCK, ids)
        live = cur.fetchone()
        if live is not None and L.is_expired(live, t):
            self._reap(conn, queue, list(live), notes)  # a lease that died by expiry
        cur = conn.execute(self._sql.DEAD_BY_ID_LOCK, ids)
        got = cur.fetchone()
        if got is None:
            raise MessageNotFound(queue, mid, "dead letter")
        row = list(got)
        at = t + delay
        row[L.R_STATE] = L.ST_DELAYED if delay > 0 else L.ST_READY
        row[L.R_AVAIL] = at
        if reset:
            row[L.R_ATT] = 0
        L.append(row, t, "requeued")
        L.place(row, False, at, seq)
        params = L.bury_params(queue, row)
        params.update(state=row[L.R_STATE], attempts=row[L.R_ATT])
        cur = conn.execute(self._sql.UNBURY, params)
        if cur.rowcount != 1:
            raise KeyExists(queue, row[L.R_KEY])
        conn.execute(self._sql.DELETE_DEAD, {"id": mid})
        if delay > 0:
            notes.append((_N_DUE, queue, at, row[L.R_KEY]))
        else:
            notes.append((_N_READY, queue, row[L.R_KEY]))
        return L.message(row, self._decode)

    # -- outcomes ------------------------------------------------------------------
    def get_outcome(self, queue: str, key: str, *, now: float | None) -> Outcome | None:
        """The key's recorded outcome, or None (absent, pruned or expired)."""
        row = self._one(self._sql.OUTCOME_GET, {"queue": queue, "key": key, "now": now}, retry=True)
        return None if row is None else L.outcome(row, self._decode)

    def prune_outcomes(self, queue: str, *, before: float) -> int:
        """Remove outcomes whose ``expires_at`` is at or before ``before``."""
        n: int = self._run(
            _rowcount,
            self._sql.OUTCOME_PRUNE,
            {"queue": queue, "before": before},
            tx=False,
            retry=True,
        )
        return n

    # -- reads (one transaction each; they never write) ------------------------------
    def _now(self, conn: Any, now: float | None) -> float:
        if now is not None:
            return now
        cur = conn.execute("SELECT extract(epoch FROM now())::float8")
        return float((cur.fetchone())[0])

    def _logical(self, conn: Any, queue: str, row: Sequence[Any], now: float) -> list[Any]:
        """The row as it is at ``now`` (an expired lease judged by its expiry), unchanged
        in the database."""
        out = list(row)
        if L.is_expired(out, now):
            follow = None
            if out[L.R_FOLLOW]:
                cur = conn.execute(self._sql.FOLLOW_VALUE, {"queue": queue, "key": out[L.R_KEY]})
                got = cur.fetchone()
                follow = None if got is None else got[0]
            L.expire(out, follow)
        return out

    def get_message(self, queue: str, message_id: str, *, now: float | None) -> Message | None:
        """Read one message by id, as it is at ``now``."""
        msg: Message | None = self._read(self._get_message_rx, queue, message_id, now)
        return msg

    def _get_message_rx(self, conn: Any, queue: str, mid: str, now: float | None) -> Message | None:
        ids = {"id": mid, "queue": queue}
        cur = conn.execute(self._sql.BY_ID, ids)
        row = cur.fetchone()
        if row is not None:
            t = self._now(conn, now)
            return L.message(self._logical(conn, queue, row, t), self._decode)
        cur = conn.execute(self._sql.DEAD_BY_ID, ids)
        row = cur.fetchone()
        return None if row is None else L.message(row, self._decode)

    def peek_key(self, queue: str, key: str, *, now: float | None) -> Message | None:
        """Read the key's live message (READY or LEASED), or None."""
        msg: Message | None = self._read(self._peek_rx, queue, key, now)
        return msg

    def _peek_rx(self, conn: Any, queue: str, key: str, now: float | None) -> Message | None:
        cur = conn.execute(self._sql.LIVE_BY_KEY, {"queue": queue, "key": key})
        row = cur.fetchone()
        if row is None:
            return None
        t = self._now(conn, now)
        out = self._logical(conn, queue, row, t)
        if out[L.R_STATE] != L.ST_DEAD:
            return L.message(out, self._decode)
        if not row[L.R_FOLLOW]:
            return None
        # Died at its expiry, not written yet: its follow-up already holds the key.
        cur = conn.execute(self._sql.FOLLOW_GET, {"queue": queue, "key": key})
        got = cur.fetchone()
        if got is None:
            return None
        fid, value, priority, delay, when, max_attempts = got
        exp = row[L.R_EXP]
        avail = rules.available_at(exp, delay, when)
        return new_message(fid, key, self._decode(value), priority, exp, avail, max_attempts)

    def keys(self, queue: str, state: State, *, now: float | None) -> list[str]:
        """Keys in ``state`` at ``now``: READY in delivery order then delayed by due time."""
        out: list[str] = self._read(self._keys_rx, queue, State(state), now)
        return out

    def _keys_rx(self, conn: Any, queue: str, state: State, now: float | None) -> list[str]:
        t = self._now(conn, now)
        if state is _DEAD:
            return [m.key for m in self._dead_rx(conn, queue, t, None)]
        cur = conn.execute(self._sql.LIVE_ROWS, {"queue": queue})
        return L.live_keys(cur.fetchall(), state, t)

    def count_ready(self, queue: str, *, now: float | None) -> int:
        """How many messages are claimable now."""
        row = self._one(self._sql.COUNT_READY, {"queue": queue, "now": now}, retry=True)
        return int(row[0])

    def count_live(self, queue: str, *, now: float | None) -> int:
        """How many live messages (ready, delayed, leased) the queue holds."""
        row = self._one(self._sql.COUNT_LIVE, {"queue": queue, "now": now}, retry=True)
        return int(row[0])

    def dead_letters(
        self, queue: str, *, now: float | None, limit: int | None = None
    ) -> list[Message]:
        """Dead letters, oldest death first."""
        out: list[Message] = self._read(self._dead_rx, queue, now, limit)
        return out

    def _dead_rx(
        self, conn: Any, queue: str, now: float | None, limit: int | None
    ) -> list[Message]:
        t = self._now(conn, now)
        cur = conn.execute(self._sql.DEAD_ROWS, {"queue": queue, "limit": limit})
        rows = [list(r) for r in cur.fetchall()]
        cur = conn.execute(self._sql.EXPIRED_EXHAUSTED, {"queue": queue, "now": t})
        for r in cur.fetchall():
            rows.append(self._logical(conn, queue, r, t))
        rows.sort(key=lambda r: (r[L.R_ORDT], r[L.R_ORDS]))
        if limit is not None:
            rows = rows[:limit]
        return [L.message(r, self._decode) for r in rows]

    def stats(self, queue: str, *, now: float | None) -> QueueStats:
        """Counts and ages at ``now``."""
        st: QueueStats = self._read(self._stats_rx, queue, now)
        return st

    def _stats_rx(self, conn: Any, queue: str, now: float | None) -> QueueStats:
        t = self._now(conn, now)
        cur = conn.execute(self._sql.COUNTS, {"queue": queue, "now": t})
        counts = cur.fetchone()
        cur = conn.execute(self._sql.LEASED_ROWS, {"queue": queue})
        return rules.logical_stats(counts, cur.fetchall(), t)

    def next_due(self, queue: str, *, now: float | None, key: str | None = None) -> float | None:
        """The earliest moment a delayed message falls due or a lease expires (for the
        queue or one key); it may already have passed, meaning "recheck now"."""
        if key is None:
            row = self._one(self._sql.NEXT_DUE, {"queue": queue}, retry=True)
        else:
            row = self._one(self._sql.NEXT_DUE_KEY, {"queue": queue, "key": key}, retry=True)
        return None if row is None or row[0] is None else float(row[0])

    def queues(self) -> list[str]:
        """Names of the queues that hold at least one message."""
        rows = self._run(_fetchall, self._sql.QUEUES, {}, tx=False, retry=True)
        return sorted(r[0] for r in rows)

    # -- maintenance ---------------------------------------------------------------
    def purge(self, queue: str) -> int:
        """Remove every message of the queue (live and dead); return how many."""
        row = self._one(self._sql.PURGE, {"queue": queue}, retry=False)
        n = int(row[0]) + int(row[1])
        if n and self.notifier.waiting:
            self.notifier.space(queue, n)
        return n

    def prune_dead(self, queue: str, *, before: float) -> int:
        """Remove dead letters that died at or before ``before``; return how many."""
        n: int = self._write(self._prune_tx, None, queue, before)
        return n

    def _prune_tx(
        self, conn: Any, t: float, seq: int, notes: Notes, queue: str, before: float
    ) -> int:
        cur = conn.execute(self._sql.EXPIRED, {"queue": queue, "now": before})
        for row in cur.fetchall():
            self._reap(conn, queue, list(row), notes)
        cur = conn.execute(self._sql.PRUNE_DEAD, {"queue": queue, "before": before})
        return int(cur.rowcount)

    def close_pool(self) -> None:
        """Close this object's connections. Idempotent."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            while self._spares:
                pool.putconn(self._spares.pop())
            pool.close()


# -- statement helpers -------------------------------------------------------------------
def _fetchone(conn: Any, sql: str, params: dict[str, Any]) -> Any:
    cur = conn.execute(sql, params)
    return cur.fetchone()


def _fetchall(conn: Any, sql: str, params: dict[str, Any]) -> list[Any]:
    cur = conn.execute(sql, params)
    return list(cur.fetchall())


def _rowcount(conn: Any, sql: str, params: dict[str, Any]) -> int:
    cur = conn.execute(sql, params)
    return int(cur.rowcount)


def _value_params(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "value": row[L.R_VALUE],
        "follow": bool(row[L.R_FOLLOW]),
        "history": json.dumps(row[L.R_HIST]),
        "id": row[L.R_ID],
    }


def _full(queue: str, maxsize: int) -> Full:
    return Full(
        f"queue {queue!r} holds {maxsize} live messages (maxsize); "
        "ack some, or put with block=True to wait"
    )
