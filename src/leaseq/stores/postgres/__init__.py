"""``postgresql://`` — leaseq on PostgreSQL, for many processes on many machines.

URL: ``postgresql://user:password@host:port/dbname?schema=NAME`` (also
``postgres://``). Options, in the URL query or as keywords (keywords win):
``schema`` (default ``leaseq``; every table lives there, created on first
use), ``migrate`` (default true; false: refuse to create or upgrade the
schema, run ``leaseq migrate URL`` or ``store.migrate()`` instead),
``pool_min``/``pool_max`` (connections per store object, default 1/10),
``pool_timeout`` (seconds a primitive waits for a connection, default 10),
``connect_timeout`` (default 5), ``synchronous_commit`` (the session setting;
default: the server's, normally ``on``; ``off`` is faster and a server crash may
lose the last commits, never corrupt the queue), ``poll`` (the fallback wake-up interval of
waiters, default 2 s), ``serializer`` (``leaseq.serializers``). Any other
query parameter (``sslmode``...) goes to libpq as it is. Needs the extra:
``pip install 'leaseq[postgres]'`` (psycopg 3 and psycopg-pool).

How the rules become SQL (schema: ``schema.sql``; statements: ``queries.sql``;
primitives: ``_aio.py``, with ``_sync.py`` generated from it): keys are unique
among live messages by a constraint; the delivery order is one partial index
(priority DESC, head before line, then place), and a claim is ONE statement
``UPDATE ... WHERE id IN (SELECT ... ORDER BY ... LIMIT n FOR UPDATE SKIP
LOCKED)``, so concurrent claimers never block each other and never get the
same message. The fencing token and the lease's expiry are checked in the
WHERE clause of ack/renew/release, with the server's clock (``now()``) unless
the queue has an explicit clock. An expired lease is judged by its expiry
time by every read and write and rewritten lazily by claims (at most 256 per
claim), so no reaper runs. The common put, claim and ack are one autocommit
statement each; every other primitive is one short transaction. Dead
letters, buffered follow-ups and outcomes live in their own tables, out of
the hot table; the hot table gets aggressive autovacuum settings (1% scale
factor, no cost delay, fillfactor 80: see ``schema.sql``). The schema has a
version table, is created and migrated on first use under an advisory lock,
and a newer schema is refused with ``SchemaMismatch``.

Waiting across processes: puts, releases and recorded outcomes NOTIFY the
schema's channel; from the first wait of this store object until it closes,
one LISTEN connection (reconnecting with backoff) wakes local waiters, and a
jittered fallback poll (``poll``) bounds what a lost notification costs. Many
tasks of one ``AsyncQueue`` claiming at once share one statement per round.

Errors: a refused or lost connection is ``StoreUnavailable`` (the cause is
chained; the message says how to start a server). Read-only primitives and
claims are retried once after the pool drops its dead connections; writes are
not: a connection lost during a put may have lost the reply of a commit that
happened ("commit in doubt"). Retrying a KEYED put is safe (the key is unique
among live messages, so the retry updates or finds the message instead of
duplicating it); a key-less put retried may enqueue twice. A claim whose
reply was lost leaves its message leased until the lease expires.

Limits: times are float epoch seconds; acks do not NOTIFY (a producer blocked
on ``maxsize`` in another process wakes by the fallback poll); ``keys``,
``stats`` and ``purge`` read every matching row; a store object must be
opened after ``fork()`` (connections do not survive it); ``maxsize`` puts of
one queue take turns on an advisory lock.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlunsplit

from leaseq._waiting import Notifier
from leaseq.errors import ConfigurationError, SchemaMismatch, StoreError
from leaseq.serializers import Codec, get_codec
from leaseq.stores.postgres._aio import AsyncPostgresCore
from leaseq.stores.postgres._listen import Listener
from leaseq.stores.postgres._sync import PostgresCore

__all__ = ["PostgresStore", "open_postgres"]

_OPTIONS = {
    "schema",
    "migrate",
    "pool_min",
    "pool_max",
    "pool_timeout",
    "connect_timeout",
    "poll",
    "serializer",
    "synchronous_commit",
}
_SYNC_COMMIT = {"on", "off", "local", "remote_write", "remote_apply"}
_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,49}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Config:
    """Everything a store object and its async twin need to connect."""

    url: str  # credentials masked
    conninfo: str
    schema: str
    codec: Codec
    migrate: bool
    pool_min: int
    pool_max: int
    pool_timeout: float
    connect_timeout: int
    poll: float
    origin: str
    synchronous_commit: str | None = None

    @property
    def channel(self) -> str:
        return f"leaseq_{self.schema}"

    def connect_kwargs(self) -> dict[str, Any]:
        options = f"-c search_path={self.schema}"
        if self.synchronous_commit is not None:
            options += f" -c synchronous_commit={self.synchronous_commit}"
        return {
            "autocommit": True,
            "options": options,
            # Which store a backend serves, in pg_stat_activity (and for fault tests).
            "application_name": f"leaseq:{self.schema}",
            "connect_timeout": self.connect_timeout,
        }


def open_postgres(parts: SplitResult, **options: Any) -> PostgresStore:
    """Open ``postgresql://`` / ``postgres://`` URLs (see the module docstring)."""
    return PostgresStore(parse_url(parts, **options))


def parse_url(parts: SplitResult, **options: Any) -> Config:
    """Split leaseq's options from libpq's and validate them."""
    for name in options:
        if name not in _OPTIONS:
            raise TypeError(f"postgresql:// takes no option {name!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OPTIONS and k != "serializer"}
    libpq = [(k, v) for k, v in query if k not in _OPTIONS]
    merged: dict[str, Any] = {**ours, **options}
    schema = str(merged.get("schema", "leaseq"))
    if not _SCHEMA_RE.fullmatch(schema):
        raise ConfigurationError(
            f"schema must be a plain identifier (letters, digits, _; at most 50), got {schema!r}"
        )
    sync_commit = merged.get("synchronous_commit")
    if sync_commit is not None and sync_commit not in _SYNC_COMMIT:
        raise ConfigurationError(
            f"synchronous_commit must be one of {sorted(_SYNC_COMMIT)}, got {sync_commit!r}"
        )
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(libpq), ""))
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    shown = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return Config(
        url=shown,
        conninfo=conninfo,
        schema=schema,
        codec=get_codec(merged.get("serializer")),
        migrate=_flag(merged.get("migrate", True)),
        pool_min=_number(merged, "pool_min", 1, int),
        pool_max=_number(merged, "pool_max", 10, int),
        pool_timeout=_number(merged, "pool_timeout", 10.0, float),
        connect_timeout=_number(merged, "connect_timeout", 5, int),
        poll=_number(merged, "poll", 2.0, float),
        origin=f"{os.getpid()}-{uuid.uuid4().hex[:12]}",
        synchronous_commit=sync_commit,
    )


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"migrate must be true or false, got {value!r}")


def _number(merged: dict[str, Any], name: str, default: Any, kind: type) -> Any:
    value = merged.get(name, default)
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be a number, got {value!r}") from None
    if out <= 0 and name != "pool_min":
        raise ConfigurationError(f"{name} must be > 0, got {value!r}")
    return out


class PostgresStore(PostgresCore):
    """The ``postgresql://`` store (sync primitives over a ``ConnectionPool``).

    Thread-safe and process-safe; see the module docstring for guarantees and
    limits. ``async_primitives()`` gives ``AsyncQueue`` native coroutines over
    an ``AsyncConnectionPool`` running the same statements.
    """

    inline = False
    server_clock = True
    serializes = True

    def __init__(self, config: Config) -> None:
        self.notifier = Notifier(watch=self._watch)
        super().__init__(config, self.notifier, {})
        self._listener = Listener(
            self._listen_connection, config.channel, config.origin, self._changed, config.poll
        )
        # Connect now: the schema check and the first connection are not paid by the
        # first call (a refused connection raises StoreUnavailable here). With
        # migrate=False a missing or old schema waits for migrate() instead.
        try:
            self._get_pool()
        except SchemaMismatch:
            if config.migrate:
                raise

    # -- waiting -------------------------------------------------------------------
    def _listen_connection(self) -> Any:
        import psycopg

        return psycopg.Connection.connect(self.config.conninfo, **self.config.connect_kwargs())

    def _watch(self, active: bool) -> None:
        if not self._closed:
            self._listener.set_active(active)

    def _changed(self, queue: str | None) -> None:
        if self.notifier.waiting:
            self.notifier.changed(queue)

    # -- schema --------------------------------------------------------------------
    def migrate(self) -> int:
        """Create or upgrade this store's schema now (even with ``migrate=False``);
        return its version. ``SchemaMismatch`` when a newer leaseq wrote it."""
        version = self._ensure_schema(force=True)
        return version

    def schema_version(self) -> int:
        """The version recorded in the schema (0: no leaseq tables yet)."""
        import psycopg

        try:
            with psycopg.Connection.connect(
                self.config.conninfo, **self.config.connect_kwargs()
            ) as conn:
                cur = conn.execute(
                    "SELECT to_regclass(quote_ident(%s) || '.leaseq_version')",
                    (self.config.schema,),
                )
                row = cur.fetchone()
                if row is None or row[0] is None:
                    return 0
                got = conn.execute("SELECT max(version) FROM leaseq_version").fetchone()
                return int(got[0] or 0) if got else 0
        except psycopg.Error as exc:
            from leaseq.stores.postgres._logic import store_error

            raise store_error(exc, self.url, "reading the schema version") from exc

    # -- the async face ------------------------------------------------------------
    def async_primitives(self) -> AsyncPrimitives:
        """Native coroutines for ``AsyncQueue`` (their own async pool, this store's
        notifier and schema state)."""
        if self._closed:
            raise StoreError(f"store {self.url} is closed")
        return AsyncPrimitives(self.config, self.notifier, self._schema_state)

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        """Stop the LISTEN thread and close the pool. Idempotent."""
        self._listener.stop()
        self.close_pool()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, schema={self.config.schema!r})"


class AsyncPrimitives(AsyncPostgresCore):
    """What ``AsyncQueue`` awaits: the primitives as coroutines, ``aclose`` and ``shutdown``."""

    async def aclose(self) -> None:
        """Close this object's async pool."""
        await self.close_pool()

    async def detach(self) -> None:
        """The running event loop is ending: close its pool (its tasks live on that
        loop) without closing this object; the next loop opens a new pool."""
        pool, self._pool = self._pool, None
        if pool is not None and self._pool_loop is asyncio.get_running_loop():
            await pool.close()

    def shutdown(self) -> None:
        """Nothing runs on threads of ours (``aclose`` closed the pool)."""
