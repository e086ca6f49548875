"""sqlite:// and the file it opens: URLs, options, schema versions, foreign files, bad paths."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

import leaseq
from leaseq.errors import ConfigurationError, SchemaMismatch, StoreUnavailable
from leaseq.stores import open_store
from leaseq.stores._sqlite_db import APPLICATION_ID, SCHEMA_VERSION


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_absolute_and_relative_paths(tmp_path, monkeypatch):
    store = open_store(f"sqlite:///{tmp_path}/abs.db")  # four slashes: absolute
    store.close()
    assert (tmp_path / "abs.db").exists()
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///./rel.db")  # three slashes: relative to the cwd
    store.close()
    assert (tmp_path / "rel.db").exists()


def test_a_host_part_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="host"):
        open_store("sqlite://somehost/x.db")


def test_unknown_url_option_and_bad_durability(tmp_path):
    with pytest.raises(ConfigurationError, match="unknown sqlite:// URL option"):
        open_store(f"sqlite:///{tmp_path}/q.db?fast=1")
    with pytest.raises(ConfigurationError, match="durability"):
        open_store(f"sqlite:///{tmp_path}/q.db", durability="sometimes")


@pytest.mark.parametrize(
    ("url_query", "options", "level"),
    [("", {}, 1), ("?durability=full", {}, 2), ("", {"durability": "full"}, 2)],
)
def test_durability_sets_synchronous(tmp_path, url_query, options, level):
    store = open_store(f"sqlite:///{tmp_path}/q.db{url_query}", **options)
    try:
        conn = store._db.conn()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()


def test_a_new_file_is_marked_and_versioned(tmp_path):
    open_store(f"sqlite:///{tmp_path}/q.db").close()
    conn = sqlite3.connect(tmp_path / "q.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def test_data_survives_reopening(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    with leaseq.Queue(url) as q:
        q.put({"a": 1}, key="k")
    with leaseq.Queue(url) as q:
        assert q.get(block=False).value == {"a": 1}


def test_a_newer_schema_is_refused_and_the_file_left_alone(tmp_path):
    path = tmp_path / "q.db"
    with leaseq.Queue(f"sqlite:///{path}") as q:
        q.put("x")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _digest(path)
    with pytest.raises(SchemaMismatch, match="newer leaseq"):
        open_store(f"sqlite:///{path}")
    assert _digest(path) == before


def test_a_database_of_another_application_is_refused_unchanged(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    conn.commit()
    conn.close()
    before = _digest(path)
    with pytest.raises(SchemaMismatch, match=r"not a leaseq store.*invoices"):
        open_store(f"sqlite:///{path}")
    assert _digest(path) == before
    assert not Path(f"{path}-wal").exists()  # not even switched to WAL


def test_a_file_that_is_not_a_database_is_refused_unchanged(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    before = _digest(path)
    with pytest.raises(SchemaMismatch, match="not a SQLite database"):
        open_store(f"sqlite:///{path}")
    assert _digest(path) == before


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(StoreUnavailable, match="does not exist; create it first"):
        open_store(f"sqlite:///{tmp_path}/missing/q.db")
    assert not (tmp_path / "missing").exists()


def test_a_directory_where_no_file_can_be_created_is_a_clear_error():
    # /proc accepts no new files, whoever we are (root ignores permission bits).
    with pytest.raises(StoreUnavailable, match=r"sqlite store .*(cannot|not writable)") as info:
        open_store("sqlite:////proc/leaseq-test.db")
    if "not writable" not in str(info.value):
        assert isinstance(info.value.__cause__, sqlite3.Error)


def test_engine_errors_keep_the_sqlite_error_as_cause(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/q.db")
    try:
        with pytest.raises(leaseq.StoreError) as info:
            store._db.write(lambda conn: conn.execute("SELECT * FROM no_such_table"))
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert "no_such_table" in str(info.value)
    finally:
        store.close()


def test_a_lock_held_past_the_budget_is_store_unavailable(tmp_path):
    path = tmp_path / "q.db"
    store = open_store(f"sqlite:///{path}", busy_timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    try:
        q = leaseq.Queue(store)
        with pytest.raises(StoreUnavailable, match="stayed locked") as info:
            q.put("x")
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        other.execute("ROLLBACK")
        other.close()
    q.put("x")  # free again: works
    assert q.qsize() == 1
    store.close()


def test_closed_store_raises_closed(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/q.db")
    store.close()
    store.close()  # idempotent
    with pytest.raises(leaseq.Closed):
        store.count_live("q", now=0.0)


def test_in_memory_store_is_private_and_shared_by_threads():
    a = leaseq.Queue("sqlite://")
    b = leaseq.Queue("sqlite://")
    a.put("only in a")
    assert b.qsize() == 0
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(a.get(timeout=5).value))
    thread.start()
    thread.join(5)
    assert got == ["only in a"]
    a.close()
    b.close()


def test_queues_lists_names_with_messages(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    with leaseq.Queue(url, name="one") as one, leaseq.Queue(url, name="two") as two:
        one.put(1)
        two.put(2)
        # Two store objects on one file see the same queues.
        assert one.store.queues() == two.store.queues() == ["one", "two"]


def test_new_files_get_small_pages_and_existing_files_keep_theirs(tmp_path):
    from leaseq.stores._sqlite_db import PAGE_SIZE

    def page_size(path: Path) -> int:
        conn = sqlite3.connect(path)
        try:
            return int(conn.execute("PRAGMA page_size").fetchone()[0])
        finally:
            conn.close()

    with leaseq.Queue(f"sqlite:///{tmp_path}/new.db") as q:
        q.put("x")
    assert page_size(tmp_path / "new.db") == PAGE_SIZE == 1024
    # A file made elsewhere with SQLite's default pages (empty: leaseq creates the
    # schema in it) keeps them, and works.
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("VACUUM")
    conn.close()
    with leaseq.Queue(f"sqlite:///{tmp_path}/old.db") as q:
        q.put("y" * 5000)  # larger than a page either way
        lease = q.get(block=False)
        assert lease.value == "y" * 5000
        q.ack(lease)
    assert page_size(tmp_path / "old.db") == 4096
