"""Several processes on one sqlite:// file: exactly once, crashes, atomic batches, fork.

Processes are real (multiprocessing, spawn) and crashes are real SIGKILLs. Lease
expiry is driven by fake clocks that every process starts at the same time, so
no test sleeps waiting for a lease to run out.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import leaseq
from leaseq.testing import FakeClock

pytestmark = pytest.mark.slow
START = 1_700_000_000.0
CTX = mp.get_context("spawn")


def _produce(url: str, who: int, count: int) -> None:
    with leaseq.Queue(url) as q:
        for i in range(count):
            q.put({"p": who, "i": i})


def _consume(url: str, out: str) -> None:
    got = []
    with leaseq.Queue(url) as q:
        while True:
            try:
                lease = q.get(timeout=3)
            except leaseq.Empty:
                break
            got.append([lease.value["p"], lease.value["i"]])
            q.ack(lease)
    Path(out).write_text(json.dumps(got))


def test_many_producers_and_consumers_ack_every_message_exactly_once(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    leaseq.Queue(url).close()  # create the file before the race
    producers = [CTX.Process(target=_produce, args=(url, p, 400)) for p in range(3)]
    consumers = [
        CTX.Process(target=_consume, args=(url, str(tmp_path / f"c{c}.json"))) for c in range(3)
    ]
    for proc in consumers + producers:
        proc.start()
    for proc in producers + consumers:
        proc.join(120)
        assert proc.exitcode == 0
    seen = [tuple(v) for c in range(3) for v in json.loads((tmp_path / f"c{c}.json").read_text())]
    assert len(seen) == len(set(seen)), "a message was delivered twice"
    assert set(seen) == {(p, i) for p in range(3) for i in range(400)}, "a message was lost"
    per_consumer = [len(json.loads((tmp_path / f"c{c}.json").read_text())) for c in range(3)]
    assert sum(per_consumer) == 1200
    with leaseq.Queue(url) as q:
        assert q.stats().total == 0


def _hold_and_hang(url: str, n: int, ready: Any) -> None:
    q = leaseq.Queue(url, clock=FakeClock(START), lease_timeout=30)
    for _ in range(n):
        q.get(block=False)
    ready.set()
    time.sleep(600)  # killed long before


def test_leases_of_a_killed_consumer_come_back_after_expiry_with_attempts_counted(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    clock = FakeClock(START)
    q = leaseq.Queue(url, clock=clock, lease_timeout=30)
    for i in range(5):
        q.put(i, key=f"k{i}")
    ready = CTX.Event()
    child = CTX.Process(target=_hold_and_hang, args=(url, 5, ready))
    child.start()
    assert ready.wait(60)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert q.stats().leased == 5
    with pytest.raises(leaseq.Empty):
        q.get(block=False)  # still leased by the dead process
    clock.advance(30)  # the leases run out: back at the head, attempts counted
    leases = [q.get(block=False) for _ in range(5)]
    assert sorted(lease.value for lease in leases) == list(range(5))
    assert {lease.attempt for lease in leases} == {2}
    assert all("expired" in [e.kind for e in lease.message.history] for lease in leases)
    for lease in leases:
        q.ack(lease)
    assert q.stats().total == 0
    q.close()


def _big_batch(url: str, n: int) -> None:
    with leaseq.Queue(url) as q:
        q.put_many(range(n))
    print("finished")


def _write_lock_held(path: Path) -> bool:
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc)
    finally:
        conn.close()


def test_a_process_killed_in_the_middle_of_put_many_stores_nothing(tmp_path):
    path = tmp_path / "q.db"
    url = f"sqlite:///{path}"
    with leaseq.Queue(url) as q:
        q.put("before")
    child = CTX.Process(target=_big_batch, args=(url, 400_000))
    child.start()
    deadline = time.monotonic() + 120
    while not _write_lock_held(path):  # the batch transaction is open
        assert child.is_alive(), "the batch finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with leaseq.Queue(url) as q:
        assert q.stats().total == 1  # none of the batch
        assert q.get(block=False).value == "before"
        q.put_many(range(3))  # and the store still works
        assert q.qsize() == 3


def _put_later(url: str, delay: float) -> None:
    time.sleep(delay)
    with leaseq.Queue(url) as q:
        q.put("from another process")


def test_a_blocked_get_wakes_for_a_put_from_another_process(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    with leaseq.Queue(url) as q:
        child = CTX.Process(target=_put_later, args=(url, 0.5))
        child.start()
        start = time.monotonic()
        lease = q.get(timeout=30)
        waited = time.monotonic() - start
        child.join(30)
        assert lease.value == "from another process"
        assert waited < 10  # woken by the change watcher, not by the timeout


def test_a_forked_child_uses_fresh_connections(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    q = leaseq.Queue(url)
    q.put("parent")
    pid = os.fork()
    if pid == 0:  # the child: the same Queue object must work here
        code = 1
        try:
            lease = q.get(block=False)
            q.ack(lease)
            q.put("child" if lease.value == "parent" else "wrong")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert q.get(block=False).value == "child"  # the parent's connection still works
    q.close()
