"""The engine side of ``sqlite://``: connections, transactions, errors, schema, change watch.

Nothing here knows queue rules (those are in ``leaseq.stores.sqlite``). What it
guarantees:

* reads use one connection per thread (``threading.local``); writes use one
  writer connection per process under a lock; all are re-opened in a forked
  child (the parent's connections are never used, nor closed, there);
* ``write(fn)`` runs ``fn(conn)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``;
  "database is locked" is retried with a short jittered backoff for at most
  ``busy_timeout`` seconds, then ``StoreUnavailable``; any other engine error
  becomes ``StoreError``/``StoreUnavailable`` with the ``sqlite3`` error as
  ``__cause__``; the transaction is rolled back on every error;
* the schema is versioned with ``PRAGMA user_version`` and marked with
  ``PRAGMA application_id``; a newer version or a database that is not a
  leaseq store raises ``SchemaMismatch`` without changing the file;
* ``ChangeWatcher`` tells commits of other connections from ours (the writer's
  ``PRAGMA data_version``: a read, no write lock) while someone waits;
* ``Checkpointer`` runs WAL checkpoints off the commit path.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import select
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

from leaseq.errors import Closed, SchemaMismatch, StoreError, StoreUnavailable

__all__ = ["SCHEMA_VERSION", "ChangeWatcher", "Database"]

T = TypeVar("T")

SCHEMA_VERSION = 2
APPLICATION_ID = 0x6C717371  # "lqsq": marks a file as a leaseq store
#: Scripts that upgrade version N to N + 1, run in the opening process's
#: ``BEGIN IMMEDIATE`` transaction (all or nothing). The result must equal a
#: fresh ``sqlite_schema.sql`` (a test compares the two).
MIGRATIONS: dict[int, str] = {
    # 1 -> 2: the results ledger, and a follow-up's id made searchable.
    1: """
CREATE INDEX leaseq_followups_id ON leaseq_followups (id);
CREATE TABLE leaseq_outcomes (
    queue       TEXT NOT NULL,
    key         TEXT NOT NULL,
    status      TEXT NOT NULL,
    value       BLOB,
    error       TEXT,
    recorded_at REAL NOT NULL,
    expires_at  REAL,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;
CREATE INDEX leaseq_outcomes_expiry ON leaseq_outcomes (queue, expires_at)
    WHERE expires_at IS NOT NULL;
""",
}

_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
_UNAVAILABLE = (10, 13, 14, 15)  # IOERR, FULL, CANTOPEN, PROTOCOL
_READONLY = 8
_NOTADB = (11, 26)  # CORRUPT, NOTADB
#: Commits of this process between two background checkpoints (~1000 WAL pages).
CHECKPOINT_EVERY = 256
#: WAL pages after which a committing connection checkpoints by itself (if the
#: background checkpoints cannot keep up, or a process never reaches CHECKPOINT_EVERY).
SAFETY_CHECKPOINT_PAGES = 16000
#: Page size of files leaseq creates (existing files keep theirs). Every commit
#: appends each page it changed to the WAL, and a claim or an ack changes a few
#: pages (the row's, and one per index): 1 KiB pages write and checksum a quarter
#: of what 4 KiB pages (SQLite's default) do, which made get+ack ~30% faster
#: in our measurements; values over ~1 KiB spill into overflow pages instead.
PAGE_SIZE = 1024
#: Bytes of the database file each connection reads through mmap.
MMAP_BYTES = 256 * 1024 * 1024
# Lock retry backoff: starts well under a typical transaction, grows to a few ms.
_RETRY_FIRST = 0.00005
_RETRY_MAX = 0.004


#: This process's id, kept current across fork: every "forked since?" check reads
#: it (``os.getpid`` is a system call, and the hot paths ask on every statement).
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the store closes the live ones)."""


def _code(exc: BaseException) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def _is_busy(exc: BaseException) -> bool:
    if _code(exc) in _BUSY:
        return True
    text = str(exc)
    return "database is locked" in text or "database table is locked" in text


def schema_sql() -> str:
    """The schema script (``sqlite_schema.sql``, shipped as package data)."""
    return resources.files("leaseq.stores").joinpath("sqlite_schema.sql").read_text("utf-8")


def split_statements(script: str) -> list[str]:
    """Split a script into statements (comments may contain semicolons)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


class Database:
    """A SQLite database file (or a private in-memory database when ``path`` is None)."""

    def __init__(
        self, path: str | None, *, synchronous: str, busy_timeout: float, label: str
    ) -> None:
        self.path = path
        self.label = label
        self.busy_timeout = busy_timeout
        self.closed = False
        self._synchronous = synchronous
        self._pid = _pid[0]
        self._local = threading.local()
        self._conns: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._orphans: list[Any] = []  # a forked child's inherited connections: never touched
        self._mem_lock: threading.RLock | None = None
        self._mem_conn: sqlite3.Connection | None = None
        # Every write of this object goes through ONE connection under this lock
        # (SQLite admits one writer at a time anyway). So the writer's own
        # ``PRAGMA data_version`` changes exactly when *another* connection
        # committed: how the change watcher tells foreign commits from ours.
        self._wlock = threading.Lock()
        # Group commit (``execute_shared``): statements waiting for the writer, and
        # whether a thread is committing a group now.
        self._group = threading.Condition(threading.Lock())
        self._pending: list[list[Any]] = []
        self._leading = False
        self._wconn: sqlite3.Connection | None = None
        self._seen_version = -1
        self._commits = 0  # since the last checkpoint request
        self._checkpointer = Checkpointer(self)
        if path is None:
            self._mem_lock = threading.RLock()
            self._mem_conn = self._connect(":memory:")
            self._init_schema(self._mem_conn)
        else:
            self._check_directory(path)
            conn = self._connect(path, setup=False)
            try:
                self._init_schema(conn)
                self._setup(conn)
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
            self._conns.add(conn)

    # -- connections ---------------------------------------------------------------
    def _check_directory(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise StoreUnavailable(
                f"sqlite store {self.label}: directory {directory!r} does not exist; "
                "create it first (leaseq does not create directories)"
            )
        if not os.path.exists(path) and not os.access(directory, os.W_OK | os.X_OK):
            raise StoreUnavailable(
                f"sqlite store {self.label}: cannot create {path!r}: directory {directory!r} "
                "is not writable"
            )

    def _connect(self, target: str, *, setup: bool = True) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                target,
                timeout=0,  # we retry "locked" ourselves, with a fairer backoff
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
                factory=_Connection,
            )
        except sqlite3.Error as exc:
            raise self.error(exc, "cannot open the database") from exc
        if setup and target != ":memory:":
            try:
                self._setup(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            # Checkpoints (which fsync) run on a background thread every
            # CHECKPOINT_EVERY commits; SQLite's own stays as a far safety net.
            conn.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_CHECKPOINT_PAGES}")
            # Memory-mapped reads: a connection re-reads pages after another
            # connection (process) committed; mapped pages make that cheap.
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        except sqlite3.Error as exc:
            raise self.error(exc, "cannot configure the connection") from exc

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, re-opened after fork)."""
        if self._mem_conn is not None:
            return self._mem_conn
        if self._pid != _pid[0]:
            self._after_fork()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.closed:
                raise Closed(f"store {self.label} is closed; open a new queue")
            assert self.path is not None
            conn = self._connect(self.path)
            self._local.conn = conn
            self._conns.add(conn)
        return conn

    def _writer(self) -> sqlite3.Connection:
        """The writer connection (call with ``_wlock`` held)."""
        if self._pid != _pid[0]:
            self._after_fork()
        conn = self._wconn
        if conn is None:
            if self.closed:
                raise Closed(f"store {self.label} is closed; open a new queue")
            assert self.path is not None
            conn = self._wconn = self._connect(self.path)
            self._conns.add(conn)
        return conn

    def foreign_commits(self) -> bool:
        """True when another connection committed since the last call (the first call
        takes the baseline and answers False). Reads the writer's data_version."""
        if self._pid != _pid[0]:
            self._after_fork()
        with self._wlock:
            if self.closed or self._mem_conn is not None:
                return False
            try:
                version = int(self._writer().execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                return True  # let waiters recheck: they will meet the error themselves
            changed = self._seen_version not in (-1, version)
            self._seen_version = version
            return changed

    def new_connection(self) -> sqlite3.Connection:
        """A connection owned by the caller (the change watcher's)."""
        assert self.path is not None
        return self._connect(self.path)

    def _after_fork(self) -> None:
        # SQLite connections must not cross fork(): keep the inherited ones
        # referenced (closing them here could disturb the parent's locks) and
        # open fresh ones on demand.
        self._orphans.append((self._local, list(self._conns), self._wconn))
        self._local = threading.local()
        self._conns = weakref.WeakSet()
        self._wconn = None
        self._wlock = threading.Lock()  # it may have been held by a thread that is not here
        self._group = threading.Condition(threading.Lock())
        self._pending = []
        self._leading = False
        self._seen_version = -1
        self._pid = _pid[0]

    def close(self) -> None:
        """Close every connection this process opened. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._mem_conn is not None:
            assert self._mem_lock is not None
            with self._mem_lock:
                self._mem_conn.close()
            return
        if self._pid != _pid[0]:
            return
        self._checkpointer.stop()
        with self._wlock:
            self._wconn = None
        for conn in list(self._conns):
            with contextlib.suppress(sqlite3.Error):  # best effort: the process may be exiting
                conn.close()
        self._local = threading.local()

    # -- errors --------------------------------------------------------------------
    def error(self, exc: BaseException, doing: str = "") -> StoreError:
        """The leaseq error for an engine error (the caller raises it ``from exc``)."""
        code = _code(exc)
        what = f"sqlite store {self.label}: {doing + ': ' if doing else ''}{exc}"
        if _is_busy(exc):
            return StoreUnavailable(
                f"sqlite store {self.label}: the database stayed locked for "
                f"{self.busy_timeout:g}s (another connection holds a long write "
                "transaction?); retry later or pass a larger busy_timeout"
            )
        if code == _READONLY:
            return StoreError(f"{what}; the file or its directory is read-only")
        if code in _NOTADB:
            return SchemaMismatch(f"{what}; this file is not a usable SQLite database")
        if code in _UNAVAILABLE:
            return StoreUnavailable(f"{what}; check the path, permissions and free space")
        return StoreError(what)

    # -- transactions --------------------------------------------------------------
    def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one ``BEGIN IMMEDIATE`` transaction (all or nothing)."""
        return self._write("BEGIN IMMEDIATE", fn, args)

    def write_one(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` where ``fn`` executes ONE write statement in autocommit
        mode (its own transaction; it must exhaust the cursor, or the write lock is
        held until the cursor is reset). Same retry and error rules as ``write``."""
        return self._write("", fn, args)

    def _write(self, begin: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self.closed:
            raise Closed(f"store {self.label} is closed; open a new queue")
        lock = self._mem_lock
        if lock is None:
            if self._pid != _pid[0]:
                self._after_fork()  # before taking a lock another thread may have held at fork
            with self._wlock:
                return self._transact(self._writer(), begin, fn, args, True)
        with lock:
            if self.closed:
                raise Closed(f"store {self.label} is closed; open a new queue")
            return self._transact(self.conn(), begin, fn, args, True)

    def execute_one(self, sql: str, params: tuple[Any, ...]) -> tuple[list[Any], int]:
        """Run one write statement in autocommit mode (its own transaction) and return
        (its rows, its rowcount). The hot path of put, claim and ack: one lock, one
        statement; errors and "locked" go through ``write_one`` (retry, mapping)."""
        if self._mem_lock is None and self._pid == _pid[0] and not self.closed:
            with self._wlock:
                conn = self._wconn or self._writer()
                try:
                    cur = conn.execute(sql, params)
                    rows = cur.fetchall()
                except sqlite3.Error:
                    pass  # no effect (autocommit): redone below with retries and mapping
                else:
                    self._commits += 1
                    if self._commits >= CHECKPOINT_EVERY:
                        self._commits = 0
                        self._checkpointer.request()
                    return rows, cur.rowcount
        return self.write_one(_execute_all, sql, params)

    def execute_shared(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Like ``execute_one`` (one write statement, committed before this returns;
        its rows), but when another thread of this process holds the writer, the
        statement joins a *group commit*: the statements of every thread waiting
        meanwhile run in one transaction, committed once. Only for statements whose
        effects are independent of each other (acks of distinct leases). If the
        group's transaction fails, nothing of it was committed and each statement
        is run again on its own (``execute_one``: retries, error mapping)."""
        # Nobody writing: no group to form. (If someone takes the writer right after
        # this look, the statement just waits for it alone, as execute_one does.)
        if (
            not self._wlock.locked()
            or self._mem_lock is not None
            or self._pid != _pid[0]
            or self.closed
        ):
            return self.execute_one(sql, params)[0]
        req: list[Any] = [sql, params, _PENDING]
        group = self._group
        with group:
            self._pending.append(req)
            while req[2] is _PENDING and self._leading:
                group.wait()
            if req[2] is _PENDING:
                self._leading = True  # we commit for everyone waiting
        if req[2] is _PENDING:
            self._lead()
        rows = req[2]
        if rows is _FAILED:
            return self.execute_one(sql, params)[0]
        out: list[Any] = rows
        return out

    def _lead(self) -> None:
        batch: list[list[Any]] = []
        results: list[Any] | None = None
        try:
            with self._wlock:
                with self._group:
                    batch, self._pending = self._pending, []
                conn = self._wconn or self._writer()
                begin = "BEGIN IMMEDIATE" if len(batch) > 1 else ""
                results = self._transact(conn, begin, _run_group, (batch,), True)
        except Exception:
            results = None  # rolled back: each statement runs again on its own
        finally:
            with self._group:
                self._leading = False
                for i, req in enumerate(batch):
                    req[2] = _FAILED if results is None else results[i]
                self._group.notify_all()

    def read(self, fn: Callable[..., T], *args: Any, snapshot: bool = True) -> T:
        """Run ``fn(conn, *args)`` in one read transaction (a consistent snapshot), or
        with ``snapshot=False`` as single autocommit statements (one-statement reads)."""
        if self.closed:
            raise Closed(f"store {self.label} is closed; open a new queue")
        begin = "BEGIN" if snapshot else ""
        lock = self._mem_lock
        if lock is None:
            return self._transact(self.conn(), begin, fn, args)
        with lock:
            if self.closed:
                raise Closed(f"store {self.label} is closed; open a new queue")
            return self._transact(self.conn(), begin, fn, args)

    def _transact(
        self,
        conn: sqlite3.Connection,
        begin: str,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        writes: bool = False,
    ) -> T:
        deadline = 0.0
        pause = _RETRY_FIRST
        while True:
            before = conn.total_changes
            try:
                if begin:
                    conn.execute(begin)
                result = fn(conn, *args)
                if begin:
                    conn.execute("COMMIT")
                if writes and conn.total_changes != before:
                    self._commits += 1
                    if self._commits >= CHECKPOINT_EVERY and self.path is not None:
                        self._commits = 0
                        self._checkpointer.request()
                return result
            except sqlite3.Error as exc:
                _rollback(conn)
                if not _is_busy(exc):
                    raise self.error(exc) from exc
                now = time.monotonic()
                if not deadline:
                    deadline = now + self.busy_timeout
                elif now >= deadline:
                    raise self.error(exc) from exc
                # Jitter keeps several waiting processes from retrying in lockstep.
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, _RETRY_MAX)
            except BaseException:
                _rollback(conn)
                raise

    # -- schema --------------------------------------------------------------------
    def _inspect(self, conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
        # With the busy retry: a process opening a WAL file that another process is
        # recovering (or migrating) sees "locked" at once, even on a plain read.
        try:
            return self._transact(conn, "", _schema_facts, ())
        except SchemaMismatch as exc:
            raise SchemaMismatch(
                f"sqlite store {self.label}: the file is not a SQLite database "
                "(nor a leaseq store); point the URL at a new or leaseq-created file"
            ) from exc

    def _check_schema(self, version: int, app_id: int, tables: list[str]) -> bool:
        """Raise SchemaMismatch for a foreign or newer database; True if it must be created."""
        if app_id == 0 and version == 0 and not tables:
            return True
        if app_id != APPLICATION_ID:
            shown = ", ".join(tables[:5]) or "none"
            raise SchemaMismatch(
                f"sqlite store {self.label}: this database is not a leaseq store "
                f"(tables: {shown}); leaseq left it unchanged — use a new file"
            )
        if version > SCHEMA_VERSION:
            raise SchemaMismatch(
                f"sqlite store {self.label}: schema version {version} was written by a newer "
                f"leaseq (this one knows up to {SCHEMA_VERSION}); upgrade leaseq — the file "
                "was left unchanged"
            )
        return False

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        version, app_id, tables = self._inspect(conn)
        create = self._check_schema(version, app_id, tables)
        if not create and version == SCHEMA_VERSION:
            self._journal(conn)
            return
        # The page size before anything is written (a no-op on an existing file); WAL
        # next (it cannot change inside a transaction), then create or migrate under
        # the write lock, re-checking: another process may have won the race.
        if create:
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        self._journal(conn)
        self._transact(conn, "BEGIN IMMEDIATE", self._create_or_migrate, ())

    def _journal(self, conn: sqlite3.Connection) -> None:
        if self.path is None:
            return
        mode = self._transact(conn, "", _wal_mode, ())
        if str(mode).lower() != "wal":
            raise StoreError(
                f"sqlite store {self.label}: the database refused WAL mode (got {mode!r}); "
                "leaseq needs a local file system that supports shared memory"
            )

    def _create_or_migrate(self, conn: sqlite3.Connection) -> None:
        version, app_id, tables = self._inspect(conn)
        if self._check_schema(version, app_id, tables):
            for statement in split_statements(schema_sql()):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        while version < SCHEMA_VERSION:
            for statement in split_statements(MIGRATIONS[version]):
                conn.execute(statement)
            version += 1
            conn.execute(f"PRAGMA user_version = {version}")


def _schema_facts(conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    return int(version), int(app_id), tables


def _wal_mode(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])


def _execute_all(
    conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]
) -> tuple[list[Any], int]:
    cur = conn.execute(sql, params)
    return cur.fetchall(), cur.rowcount


_PENDING = object()  # a group-commit request not run yet
_FAILED = object()  # its group's transaction failed (rolled back)


def _run_group(conn: sqlite3.Connection, batch: list[list[Any]]) -> list[list[Any]]:
    return [conn.execute(sql, params).fetchall() for sql, params, _ in batch]


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        # The transaction may be gone already (the engine rolled it back).
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class _WalEvents:
    """Linux inotify on the ``-wal`` file: every commit (of anyone) writes it, so a
    blocking ``select`` on this descriptor wakes the watcher with no polling.
    Made with ctypes (stdlib only); unavailable elsewhere (``OSError``)."""

    IN_MODIFY = 0x2

    def __init__(self, path: str) -> None:
        if not sys.platform.startswith("linux"):
            raise OSError("inotify is Linux-only")
        libc = ctypes.CDLL(None, use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
        init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
        add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        add.restype = ctypes.c_int
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if add(fd, os.fsencode(path + "-wal"), self.IN_MODIFY) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, "inotify_add_watch failed")
        self.fd = fd

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 65536):
                pass

    def close(self) -> None:
        os.close(self.fd)


class ChangeWatcher:
    """Sees commits made by *other* connections (other processes, other store objects)
    while someone waits, and calls ``on_change`` for them (never for this store's own
    commits, which the store already announced precisely).

    The test is ``Database.foreign_commits`` (the writer connection's
    ``PRAGMA data_version``: a read, no write lock). When to test: on Linux the
    thread blocks on inotify events of the ``-wal`` file (``_WalEvents``), so a
    commit is seen at once (tested again after ``RECHECK`` delays: a committer
    publishes its commit just after writing the WAL), and an idle watcher wakes
    only every ``SAFETY`` seconds. Elsewhere it polls: every ``FIRST`` seconds
    after a change, doubling to ``LONGEST``.
    """

    FIRST = 0.0005
    LONGEST = 0.002
    RECHECK = (0.0003, 0.002)
    SAFETY = 0.05

    def __init__(self, db: Database, on_change: Callable[[], None]) -> None:
        self._db = db
        self._on_change = on_change
        self._lock = threading.Lock()
        self._active = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._events: _WalEvents | None = None
        self._opened = False
        self._pid = _pid[0]

    def set_active(self, active: bool) -> None:
        """Start watching (taking the current state as the baseline, at once, so a
        commit made after this call is never missed) or stop watching."""
        if self._stopped:
            return
        if not active:
            self._active.clear()
            return
        with self._lock:
            if self._pid != _pid[0]:  # forked: the thread stayed behind
                self._pid, self._thread, self._events, self._opened = _pid[0], None, None, False
            if not self._opened:
                self._open()
            self._db.foreign_commits()  # the baseline
            self._active.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="leaseq-sqlite-watch", daemon=True
                )
                self._thread.start()

    def _open(self) -> None:
        self._opened = True
        assert self._db.path is not None
        try:
            self._events = _WalEvents(self._db.path)
        except (OSError, AttributeError):
            self._events = None  # not Linux, or no -wal file yet: poll instead

    def _check(self) -> bool:
        return not self._stopped and self._db.foreign_commits()

    def _run(self) -> None:
        events = self._events
        if events is not None:
            self._run_events(events)
        else:
            self._run_polling()

    def _run_events(self, events: _WalEvents) -> None:
        while not self._stopped:
            if not self._active.is_set():
                self._active.wait()
                continue
            try:
                ready, _, _ = select.select([events.fd], [], [], self.SAFETY)
                if ready:
                    events.drain()
            except (OSError, ValueError):
                return  # closed by stop()
            news = self._check()
            for pause in self.RECHECK if ready else ():
                if news or self._stopped:
                    break
                time.sleep(pause)
                news = self._check()
            if news:
                self._on_change()

    def _run_polling(self) -> None:
        pause = self.FIRST
        while not self._stopped:
            if not self._active.is_set():
                self._active.wait()
                pause = self.FIRST
                continue
            time.sleep(pause)
            if self._check():
                pause = self.FIRST
                self._on_change()
            else:
                pause = min(pause * 2, self.LONGEST)

    def stop(self) -> None:
        """Stop the thread. Idempotent."""
        self._stopped = True
        self._active.set()
        with self._lock:
            events, self._events = self._events, None
        if events is not None and self._pid == _pid[0]:
            events.close()


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own thread and connection when asked.

    A checkpoint copies WAL pages into the database and fsyncs; done inline it
    stalls whichever commit crosses the threshold. PASSIVE never blocks
    writers or readers; the WAL restarts from its beginning once a checkpoint
    has caught up.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._wanted = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._pid = _pid[0]

    def request(self) -> None:
        """Ask for a checkpoint soon (starts the thread on first use, also after fork)."""
        if self._stopped:
            return
        if self._thread is None or self._pid != _pid[0] or not self._thread.is_alive():
            self._pid = _pid[0]
            self._thread = threading.Thread(
                target=self._run, name="leaseq-sqlite-checkpoint", daemon=True
            )
            self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        try:
            conn = self._db.new_connection()
        except StoreError:
            return  # the writers' own safety-net checkpoints still bound the WAL
        try:
            while not self._stopped:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopped:
                    break
                with contextlib.suppress(sqlite3.Error):  # busy: the next request retries
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def stop(self) -> None:
        """Let the thread finish its current checkpoint and exit."""
        self._stopped = True
        self._wanted.set()
