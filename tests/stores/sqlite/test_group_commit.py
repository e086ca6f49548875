"""``sqlite://`` group commit: acks of threads that wait for the process's one writer
commit together, and each ``ack`` still returns only after its own is committed.

The tests hold the writer lock while acking threads queue up, so the group they
form is known; real threads, no sleeps that decide an outcome. Threads acking
freely (groups of whatever size) are the conformance suite's concurrency tests."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import leaseq
from leaseq.stores import _sqlite_db

N = 6


def _wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


def _acks_in_one_group(q: leaseq.Queue, leases: list[leaseq.Lease]) -> list[Any]:
    """Ack each lease on its own thread while the test holds the writer, so all of
    them wait together; return what each ack returned or raised."""
    db = q._store._db  # type: ignore[attr-defined]
    out: list[Any] = [None] * len(leases)

    def ack(i: int) -> None:
        try:
            q.ack(leases[i])
            out[i] = "acked"
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=ack, args=(i,)) for i in range(len(leases))]
    with db._wlock:
        for t in threads:
            t.start()
        _wait_until(lambda: len(db._pending) == len(leases))
    for t in threads:
        t.join(10)
    return out


@pytest.fixture
def q(tmp_path):
    with leaseq.Queue(f"sqlite:///{tmp_path}/g.db") as queue:
        yield queue


def _live_ids(path: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM leaseq_messages")}
    finally:
        conn.close()


def test_waiting_acks_commit_in_one_transaction(q, tmp_path, monkeypatch):
    groups: list[int] = []
    real = _sqlite_db._run_group

    def spy(conn: sqlite3.Connection, batch: list[list[Any]]) -> list[list[Any]]:
        groups.append(len(batch))
        return real(conn, batch)

    monkeypatch.setattr(_sqlite_db, "_run_group", spy)
    q.put_many(list(range(N)))
    leases = q.get_many(N)
    assert _acks_in_one_group(q, leases) == ["acked"] * N
    assert groups == [N]
    assert _live_ids(f"{tmp_path}/g.db") == set()  # committed: seen by another connection


def test_a_stale_lease_in_a_group_is_lost_alone(q):
    q.put_many(list(range(N)))
    leases = q.get_many(N, lease_timeout=30)
    stale = leases[2]
    # Another holder took message 2 over: its old token must not delete it.
    q.release(stale)
    again = q.get()
    assert again.message.id == stale.message.id
    out = _acks_in_one_group(q, leases)
    assert isinstance(out[2], leaseq.LeaseLost)
    assert [o for i, o in enumerate(out) if i != 2] == ["acked"] * (N - 1)
    assert q.inspect(again.message.id).state is leaseq.State.LEASED
    q.ack(again)
    assert q.stats().total == 0


def test_a_failed_group_is_rolled_back_and_each_ack_runs_alone(q, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = _sqlite_db._run_group

    def fail_once(conn: sqlite3.Connection, batch: list[list[Any]]) -> list[list[Any]]:
        calls["n"] += 1
        got = real(conn, batch)  # the statements ran inside the group's transaction...
        if calls["n"] == 1:
            raise sqlite3.OperationalError("disk I/O error")  # ...which then fails
        return got

    monkeypatch.setattr(_sqlite_db, "_run_group", fail_once)
    q.put_many(list(range(N)))
    leases = q.get_many(N)
    assert _acks_in_one_group(q, leases) == ["acked"] * N
    assert calls["n"] == 1  # the reruns went one by one (execute_one), not as a group
    assert _live_ids(f"{tmp_path}/g.db") == set()
