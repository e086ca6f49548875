"""The results ledger, cross-queue publish and the schema 1 -> 2 migration (sqlite://)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from leaseq._core.model import Outcome, State
from leaseq.errors import Full, KeyExists, LeaseLost
from leaseq.stores import _sqlite_db as D
from leaseq.stores.base import PutRequest
from leaseq.stores.sqlite import SQLiteStore

T0 = 1_700_000_000.0
Q = "jobs"


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(str(tmp_path / "q.db"))
    yield s
    s.close()


def _leased(store, key="k", value="v", queue=Q, **put):
    store.put(queue, PutRequest(value, key, **put), now=T0)
    (lease,) = store.claim(queue, now=T0, lease_timeout=10, owner="w")
    return lease


def _ok(key="k", value=None, expires_at=None):
    return Outcome(key, "succeeded", value, None, T0 + 1, expires_at)


# -- ledger ----------------------------------------------------------------------------
def test_ack_with_an_outcome_records_it_and_removes_the_message(store):
    lease = _leased(store)
    store.ack(Q, lease, now=T0 + 1, outcome=_ok(value={"n": [1, 2]}))
    assert store.get_outcome(Q, "k", now=T0 + 2) == _ok(value={"n": [1, 2]})
    assert store.peek_key(Q, "k", now=T0 + 2) is None
    assert store.get_outcome("other", "k", now=T0 + 2) is None
    assert store.get_outcome(Q, "nope", now=T0 + 2) is None


def test_a_newer_outcome_replaces_the_older(store):
    store.ack(Q, _leased(store), now=T0 + 1, outcome=_ok(value=1))
    store.ack(Q, _leased(store), now=T0 + 1, outcome=_ok(value=2))
    got = store.get_outcome(Q, "k", now=T0 + 2)
    assert got is not None and got.value == 2


def test_dead_letter_with_an_outcome_records_a_failure(store):
    lease = _leased(store)
    failed = Outcome("k", "failed", None, "poison", T0 + 1, None)
    dead = store.dead_letter(Q, lease, now=T0 + 1, error="poison", outcome=failed)
    assert dead.state is State.DEAD
    assert store.get_outcome(Q, "k", now=T0 + 5) == failed


def test_a_lost_lease_records_no_outcome(store):
    lease = _leased(store)
    with pytest.raises(LeaseLost):
        store.ack(Q, lease, now=T0 + 10, outcome=_ok())  # the lease ran out at T0 + 10
    with pytest.raises(LeaseLost):
        store.dead_letter(Q, lease, now=T0 + 11, outcome=_ok())
    assert store.get_outcome(Q, "k", now=T0 + 11) is None


def test_an_unserializable_outcome_is_a_type_error_and_changes_nothing(store):
    lease = _leased(store)
    with pytest.raises(TypeError):
        store.ack(Q, lease, now=T0 + 1, outcome=_ok(value=object()))
    assert store.peek_key(Q, "k", now=T0 + 1).state is State.LEASED
    store.ack(Q, lease, now=T0 + 1)


def test_expiry_and_prune(store):
    store.ack(Q, _leased(store, "a"), now=T0 + 1, outcome=_ok("a", expires_at=T0 + 100))
    store.ack(Q, _leased(store, "b"), now=T0 + 1, outcome=_ok("b"))
    assert store.get_outcome(Q, "a", now=T0 + 99) is not None
    assert store.get_outcome(Q, "a", now=T0 + 100) is None  # expires_at <= now
    assert store.prune_outcomes(Q, before=T0 + 99) == 0
    assert store.prune_outcomes(Q, before=T0 + 100) == 1
    assert store.prune_outcomes(Q, before=T0 + 10**9) == 0  # no expiry: kept until replaced
    assert store.get_outcome(Q, "b", now=T0 + 10**9) is not None


def test_purge_leaves_the_ledger_alone(store):
    store.ack(Q, _leased(store), now=T0 + 1, outcome=_ok())
    store.put(Q, PutRequest("x", "x"), now=T0 + 1)
    assert store.purge(Q) == 1
    assert store.get_outcome(Q, "k", now=T0 + 2) is not None


def test_ack_with_an_outcome_still_frees_the_followup(store):
    lease = _leased(store)
    store.put(Q, PutRequest("next", "k", if_in_flight="buffer"), now=T0 + 1)
    store.ack(Q, lease, now=T0 + 2, outcome=_ok())
    assert store.peek_key(Q, "k", now=T0 + 2).value == "next"
    assert store.get_outcome(Q, "k", now=T0 + 2) is not None


def test_settled_wakes_only_when_an_outcome_was_recorded(store):
    calls = []
    store.notifier.waiting = 1  # pretend someone waits, and watch the calls
    store.notifier.settled = lambda queue, key: calls.append((queue, key))
    store.ack(Q, _leased(store, "a"), now=T0 + 1)
    store.ack(Q, _leased(store, "b"), now=T0 + 1, outcome=_ok("b"))
    store.dead_letter(Q, _leased(store, "c"), now=T0 + 1, outcome=_ok("c"))
    assert calls == [(Q, "b"), (Q, "c")]


# -- publish ------------------------------------------------------------------------------
def test_publish_puts_across_queues(store):
    msgs = store.publish(
        [("a", PutRequest(1, "x")), ("b", PutRequest(2, "x")), ("a", PutRequest(3))], now=T0
    )
    assert [m.value for m in msgs] == [1, 2, 3]
    assert store.keys("a", State.READY, now=T0) == ["x", msgs[2].id]
    assert store.peek_key("b", "x", now=T0).value == 2
    assert store.publish([], now=T0) == []


def test_publish_is_all_or_none(store):
    store.put("b", PutRequest("old", "taken"), now=T0)
    with pytest.raises(KeyExists):
        store.publish(
            [("a", PutRequest(1, "x")), ("b", PutRequest(2, "taken", if_ready="reject"))],
            now=T0,
        )
    assert store.count_live("a", now=T0) == 0
    with pytest.raises(TypeError):
        store.publish([("a", PutRequest(1)), ("b", PutRequest(object()))], now=T0)
    assert store.count_live("a", now=T0) == 0


def test_publish_bounds_each_queue_by_maxsize(store):
    store.put("b", PutRequest(0), now=T0)
    store.publish(
        [("a", PutRequest(1)), ("a", PutRequest(2)), ("b", PutRequest(3))], now=T0, maxsize=2
    )
    with pytest.raises(Full):
        store.publish([("c", PutRequest(1)), ("b", PutRequest(4))], now=T0, maxsize=2)
    assert store.count_live("c", now=T0) == 0
    assert store.count_live("b", now=T0) == 2


def test_publish_applies_the_keyed_put_rules(store):
    lease = _leased(store, queue="a")
    msgs = store.publish([("a", PutRequest("later", "k", if_in_flight="buffer"))], now=T0 + 1)
    store.ack("a", lease, now=T0 + 2)
    assert store.peek_key("a", "k", now=T0 + 2).id == msgs[0].id


# -- migration ------------------------------------------------------------------------------
V1_SCHEMA = Path(__file__).with_name("schema_v1.sql")


def _v1_database(path):
    """A file as leaseq with schema version 1 wrote it (its tables, one message)."""
    script = V1_SCHEMA.read_text("utf-8")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in D.split_statements(script):
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {D.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO leaseq_messages (id, queue, key, live_key, value, priority, state, "
        "attempts, created_at, available_at, band, ord_t, ord_s, history) "
        "VALUES ('m1', 'jobs', 'k', 'k', '\"old\"', 0, 0, 0, ?, ?, 1, ?, 1, '[]')",
        (T0, T0, T0),
    )
    conn.close()


def _shape(path):
    conn = sqlite3.connect(path)
    try:
        objects = conn.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        ).fetchall()
        columns = {
            name: conn.execute(f"PRAGMA table_xinfo({name})").fetchall()
            for kind, name, _ in objects
            if kind == "table"
        }
        indexes = {
            name: conn.execute(f"PRAGMA index_xinfo({name})").fetchall()
            for kind, name, _ in objects
            if kind == "index"
        }
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    return objects, columns, indexes, version


def test_a_version_1_file_is_migrated_in_place_and_keeps_its_messages(tmp_path):
    old = tmp_path / "old.db"
    _v1_database(old)
    s = SQLiteStore(str(old))
    try:
        msg = s.peek_key(Q, "k", now=T0)
        assert msg is not None and (msg.id, msg.value) == ("m1", "old")
        (lease,) = s.claim(Q, now=T0, lease_timeout=10, owner="w")
        s.ack(Q, lease, now=T0 + 1, outcome=_ok(value="done"))
        assert s.get_outcome(Q, "k", now=T0 + 1).value == "done"
    finally:
        s.close()
    SQLiteStore(str(tmp_path / "new.db")).close()
    assert _shape(old) == _shape(tmp_path / "new.db")
    assert _shape(old)[3] == D.SCHEMA_VERSION == 2


def _open_and_record(path: str, who: int, go: Any) -> None:
    go.wait(30)
    s = SQLiteStore(path)
    try:
        s.put(f"q{who}", PutRequest(who, "k"), now=T0)
        (lease,) = s.claim(f"q{who}", now=T0, lease_timeout=10, owner="w")
        s.ack(f"q{who}", lease, now=T0 + 1, outcome=_ok(value=who))
    finally:
        s.close()


@pytest.mark.slow
def test_processes_opening_a_version_1_file_at_once_migrate_it_once(tmp_path):
    old = tmp_path / "old.db"
    _v1_database(old)
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_open_and_record, args=(str(old), i, go)) for i in range(4)]
    for proc in procs:
        proc.start()
    go.set()  # all four race to open (and migrate) the file
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    s = SQLiteStore(str(old))
    try:
        assert [s.get_outcome(f"q{i}", "k", now=T0 + 1).value for i in range(4)] == [0, 1, 2, 3]
        assert s.peek_key(Q, "k", now=T0).value == "old"
    finally:
        s.close()
    SQLiteStore(str(tmp_path / "new.db")).close()
    assert _shape(old) == _shape(tmp_path / "new.db")
