"""The results ledger across processes.

Crashes around ``ack(outcome=...)``: the outcome exists iff the message is gone.
Real processes (spawn), real SIGKILLs: right before the ack's COMMIT (from the
statement trace of the writer connection, so the DELETE and the ledger write
have both run), right after ``ack`` returned, and at random moments of a loop
of acks. And a ``result()`` waiter is woken by another process's ack.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import leaseq
from leaseq._core.model import Outcome
from leaseq.stores.base import PutRequest
from leaseq.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.slow
T0 = 1_700_000_000.0
Q = "jobs"
CTX = mp.get_context("spawn")


def _outcome(key: str) -> Outcome:
    return Outcome(key, "succeeded", {"key": key}, None, T0, None)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _ack_and_die(path: str, when: str) -> None:
    store = SQLiteStore(path)
    (lease,) = store.claim(Q, now=T0, lease_timeout=3600, owner="w")
    if when == "before_commit":
        with store._db._wlock:
            writer = store._db._writer()
        writer.set_trace_callback(lambda sql: _kill_self() if sql == "COMMIT" else None)
    store.ack(Q, lease, now=T0 + 1, outcome=_outcome(lease.key))
    _kill_self()  # right after the commit


def _ack_forever(path: str, started: Any) -> None:
    store = SQLiteStore(path)
    started.set()
    while True:
        leases = store.claim(Q, now=T0, lease_timeout=3600, owner="w")
        if not leases:
            time.sleep(60)  # done; the parent kills us
        store.ack(Q, leases[0], now=T0 + 1, outcome=_outcome(leases[0].key))


def _settled_iff_gone(store: SQLiteStore, keys: list[str]) -> int:
    """Check every key; return how many were settled."""
    settled = 0
    for key in keys:
        gone = store.peek_key(Q, key, now=T0 + 2) is None
        outcome = store.get_outcome(Q, key, now=T0 + 2)
        assert gone == (outcome is not None), (key, gone, outcome)
        if outcome is not None:
            assert outcome == _outcome(key)
            settled += 1
    return settled


def _run(target: Any, *args: Any) -> int | None:
    proc = CTX.Process(target=target, args=args)
    proc.start()
    proc.join(60)
    return proc.exitcode


@pytest.mark.parametrize(("when", "settled"), [("before_commit", 0), ("after_commit", 1)])
def test_killed_around_the_commit(tmp_path, when, settled):
    path = str(tmp_path / "q.db")
    store = SQLiteStore(path)
    store.put(Q, PutRequest("v", "k"), now=T0)
    store.close()
    assert _run(_ack_and_die, path, when) == -signal.SIGKILL
    store = SQLiteStore(path)
    try:
        assert _settled_iff_gone(store, ["k"]) == settled
        if not settled:  # the message is still leased by the dead process, untouched
            assert store.peek_key(Q, "k", now=T0 + 2).attempts == 1
    finally:
        store.close()


def test_killed_at_random_moments_of_a_loop_of_acks(tmp_path):
    path = str(tmp_path / "q.db")
    keys = [f"k{i}" for i in range(10_000)]
    store = SQLiteStore(path)
    store.put_many(Q, [PutRequest(i, k) for i, k in enumerate(keys)], now=T0)
    rng = random.Random(1234)
    total = 0
    try:
        for _ in range(8):
            started = CTX.Event()
            proc = CTX.Process(target=_ack_forever, args=(path, started))
            proc.start()
            assert started.wait(60)
            time.sleep(rng.uniform(0.01, 0.2))  # a random moment of the loop (not a time wait)
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(60)
            assert proc.exitcode == -signal.SIGKILL
        total = _settled_iff_gone(store, keys)
    finally:
        store.close()
    assert 0 < total < len(keys), "the loop must have been cut while acking"


def _wait_for_result(url: str, out: str, ready: Any) -> None:
    with leaseq.Queue(url, name="jobs") as q:
        ready.set()
        start = time.monotonic()
        value = q.result("k", timeout=30)
        Path(out).write_text(json.dumps([value, time.monotonic() - start]))


def test_a_result_waiter_wakes_for_an_ack_in_another_process(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    out = tmp_path / "out.txt"
    with leaseq.Queue(url, name="jobs") as q:
        q.put({"n": 1}, key="k")
        lease = q.get(block=False)
        ready = CTX.Event()
        proc = CTX.Process(target=_wait_for_result, args=(url, str(out), ready))
        proc.start()
        assert ready.wait(60)
        time.sleep(0.3)  # let it reach its wait; if it is late it finds the outcome at once
        q.ack(lease, result={"answer": 42})
        proc.join(60)
    assert proc.exitcode == 0
    value, waited = json.loads(out.read_text())
    assert value == {"answer": 42}
    assert waited < 10, "woken by the other process's commit, not by its 30 s timeout"
