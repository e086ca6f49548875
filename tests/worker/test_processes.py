"""Workers in real processes: SIGKILL mid-attempt, SIGTERM mid-work, crashes around the ack.

These run on every store that is shared between processes (all but ``memory://``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import leaseq
from leaseq import State
from tests.conformance.stores import STORE_FACTORIES

pytestmark = pytest.mark.slow

PROC = Path(__file__).with_name("_proc.py")
SHARED = sorted(n for n in STORE_FACTORIES if n != "memory")  # memory:// is one process


@pytest.fixture(params=SHARED)
def url(request: Any, tmp_path: Path) -> str:
    return STORE_FACTORIES[request.param](tmp_path, request)


def spawn(url: str, mode: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    full = dict(os.environ)
    full["PYTHONPATH"] = os.pathsep.join(
        [str(Path(leaseq.__file__).parents[1]), str(Path(__file__).parents[2])]
    )
    full.update(env)
    return subprocess.Popen([sys.executable, str(PROC), url, mode, str(log)], env=full)


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def wait_for(cond: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_poison_message_dies_after_exactly_max_attempts_despite_sigkills(url, tmp_path):
    q = leaseq.Queue(url, name="jobs", max_attempts=3, lease_timeout=0.5)
    q.put("poison", key="p")
    log = tmp_path / "log"
    # Attempt 1 and 2: killed mid-handler; their leases expire and still count.
    for attempt in (1, 2):
        proc = spawn(url, "fail_slow", log, LEASEQ_TEST_LEASE_TIMEOUT="0.5")
        wait_for(lambda n=attempt: sum(1 for x in lines(log) if x.startswith("start")) == n)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # Attempt 3: runs to its failure: that was the last one.
    proc = spawn(url, "fail_slow", log, LEASEQ_TEST_LEASE_TIMEOUT="0.5")
    try:
        wait_for(lambda: len(q.dead_letters()) == 1)
        time.sleep(0.7)  # longer than a lease: a 4th claim would show up in the log
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    starts = [x for x in lines(log) if x.startswith("start")]
    assert starts == ["start p 1", "start p 2", "start p 3"]
    [dead] = q.dead_letters()
    assert dead.attempts == 3 and dead.state is State.DEAD
    q.close()


@pytest.mark.parametrize("mode", ["work", "work_async"])
def test_sigterm_during_work_loses_nothing(url, tmp_path, mode):
    q = leaseq.Queue(url, name="jobs", max_attempts=3)
    keys = [f"k{i}" for i in range(40)]
    q.put_many([(k, {"key": k}) for k in keys])
    log = tmp_path / "log"
    proc = spawn(url, mode, log, LEASEQ_TEST_CONCURRENCY="4", LEASEQ_TEST_WORK="0.05")
    wait_for(lambda: sum(1 for x in lines(log) if x.startswith("done")) >= 8)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert lines(log)[-1] == "exited"
    done = {x.split()[1] for x in lines(log) if x.startswith("done")}
    live = set(q.keys(State.READY))
    assert not q.keys(State.LEASED)  # nothing stranded in a lease
    assert not q.dead_letters()
    assert done.isdisjoint(live)  # finished work was acked
    assert done | live == set(keys)  # and nothing vanished
    q.close()


def test_a_second_sigterm_exits_at_once(url, tmp_path):
    q = leaseq.Queue(url, name="jobs", max_attempts=3)
    q.put("slow", key="slow")
    log = tmp_path / "log"
    proc = spawn(url, "work", log, LEASEQ_TEST_WORK="60")
    wait_for(lambda: any(x.startswith("start") for x in lines(log)))
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert proc.poll() is None  # the first signal waits for the running job
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) != 0  # the second one does not
    assert "exited" not in lines(log)
    assert q.peek("slow") is not None  # its lease expires; the job is not lost
    q.close()


def test_idempotent_key_runs_once_across_a_kill_right_after_the_ack(url, tmp_path):
    q = leaseq.Queue(url, name="jobs", max_attempts=3)
    q.put("v", key="order-1")
    log = tmp_path / "log"
    proc = spawn(url, "idem_kill_after_ack", log)
    assert proc.wait(30) == -signal.SIGKILL
    assert q.result("order-1", timeout=0) == "result-order-1"
    # The same key arrives again; a fresh worker acks it without running it.
    q.put("v", key="order-1")
    proc = spawn(url, "idem", log)
    try:
        wait_for(lambda: q.peek("order-1") is None)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert [x for x in lines(log) if x.startswith("done")] == ["done order-1"]
    q.close()


def test_a_kill_before_the_ack_records_nothing_and_redelivers(url, tmp_path):
    # The ledger and the ack are one atomic step: a crash before it leaves no result
    # and the message live, so the work is redone (at least once), never lost.
    q = leaseq.Queue(url, name="jobs", max_attempts=3, lease_timeout=0.5)
    q.put("v", key="order-2")
    log = tmp_path / "log"
    proc = spawn(url, "idem_kill_before_ack", log, LEASEQ_TEST_LEASE_TIMEOUT="0.5")
    assert proc.wait(30) == -signal.SIGKILL
    assert q.outcome("order-2") is None
    assert q.peek("order-2") is not None
    proc = spawn(url, "idem", log, LEASEQ_TEST_LEASE_TIMEOUT="0.5")
    try:
        assert q.result("order-2", timeout=30) == "result-order-2"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert q.peek("order-2") is None
    q.close()


def test_a_handler_longer_than_its_lease_runs_once(url, tmp_path):
    q = leaseq.Queue(url, name="jobs", max_attempts=3)
    for i in range(3):
        q.put(i, key=f"long{i}")
    log = tmp_path / "log"
    env = {"LEASEQ_TEST_LEASE_TIMEOUT": "0.4", "LEASEQ_TEST_WORK": "1.2"}
    procs = [spawn(url, "work", log, **env) for _ in range(2)]
    try:
        wait_for(lambda: q.stats().total == 0, timeout=60)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(30) == 0
    starts = sorted(x for x in lines(log) if x.startswith("start"))
    assert starts == ["start long0 1", "start long1 1", "start long2 1"]
    q.close()
