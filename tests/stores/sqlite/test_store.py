"""What only the SQLite store can show: index use, its change watcher, idle waiters."""

from __future__ import annotations

import re
import sqlite3
import threading
import time

import pytest

import leaseq
from leaseq._core.model import HISTORY_LIMIT
from leaseq.stores import sqlite_queries as Q


@pytest.fixture
def path(tmp_path):
    return tmp_path / "q.db"


def _plan(conn: sqlite3.Connection, sql: str) -> str:
    count = len(set(re.findall(r"\?(\d+)", sql))) or sql.count("?")
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, [0] * count))


@pytest.mark.parametrize(
    "name",
    [
        "CLAIM_FAST",
        "CLAIM_NEXT",
        "ACK_FAST",
        "PROMOTE",
        "EXPIRED",
        "LIVE_BY_KEY",
        "PROBE",
        "OUTCOME_GET",
        "PRUNE_OUTCOMES",
        "FOLLOW_KEY_BY_ID",
        "COUNT_READY",
    ],
)
def test_hot_statements_search_an_index_and_never_scan(path, name):
    # A claim, an ack or a promotion must not read the backlog: every step of
    # its plan is an index SEARCH (or a constant), never a SCAN of the table.
    with leaseq.Queue(f"sqlite:///{path}") as q:
        q.put_many(range(50))
        plan = _plan(q.store._db.conn(), getattr(Q, name))
    assert "SEARCH" in plan
    assert "SCAN leaseq_messages" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_a_commit_by_another_store_object_wakes_a_blocked_get(path):
    url = f"sqlite:///{path}"
    with leaseq.Queue(url) as waiting, leaseq.Queue(url) as other:
        assert waiting.store is not other.store
        got: list[object] = []
        thread = threading.Thread(target=lambda: got.append(waiting.get(timeout=20).value))
        thread.start()
        time.sleep(0.1)
        start = time.monotonic()
        other.put("hello")
        thread.join(20)
        assert got == ["hello"]
        assert time.monotonic() - start < 5  # the watcher, not the 20 s timeout


def test_an_idle_blocked_get_takes_no_write_lock_and_commits_nothing(path):
    with leaseq.Queue(f"sqlite:///{path}") as q:
        outcome: list[str] = []

        def wait() -> None:
            try:
                q.get(timeout=1.0)
                outcome.append("got")
            except leaseq.Empty:
                outcome.append("empty")

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.2)  # past its first claim: it only waits now
        probe = sqlite3.connect(path, isolation_level=None, timeout=0)
        version = probe.execute("PRAGMA data_version").fetchone()[0]
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            probe.execute("BEGIN IMMEDIATE")  # raises "database is locked" if it wrote
            probe.execute("ROLLBACK")
            time.sleep(0.005)
        assert probe.execute("PRAGMA data_version").fetchone()[0] == version
        probe.close()
        thread.join(5)
        assert outcome == ["empty"]


def test_an_empty_claim_after_an_empty_claim_takes_no_write_lock(path):
    with leaseq.Queue(f"sqlite:///{path}") as q:
        with pytest.raises(leaseq.Empty):
            q.get(block=False)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # a long writer elsewhere
        try:
            with pytest.raises(leaseq.Empty):
                q.get(block=False)  # answered by a read: no wait for the lock
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()


def test_history_stays_bounded(path):
    with leaseq.Queue(f"sqlite:///{path}", lease_timeout=60) as q:
        q.put("x", key="k")
        for _ in range(40):
            q.release(q.get(block=False))
        msg = q.peek("k")
        assert msg is not None
        assert len(msg.history) == HISTORY_LIMIT
        assert msg.attempts == 40
