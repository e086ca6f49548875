"""SIGKILL at the dangerous points of ack/dead-letter with an outcome, publish and
put_many (the child kills itself there: ``_crashers``), then look at what a
fresh process sees: never an outcome without its message settled or still live,
never a part of a batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from leaseq.stores.base import PutRequest
from leaseq.stores.file import FileStore, open_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
LATER = 3600.0  # every lease the child held has expired by then


def crash(op: str, root: Path, point: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.stores.file._crashers", op, str(root), point],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert b"ready" in proc.stdout and b"finished" not in proc.stdout


def fresh(root: Path) -> FileStore:
    """A store handle as a new process would open it (this process never opened
    ``root`` before, so the open-time recovery runs)."""
    return open_file(urlsplit(f"file://{root}"))


def drain(store: FileStore, queue: str) -> list[object]:
    values = []
    now = time.time() + LATER
    while leases := store.claim(queue, now=now, lease_timeout=30, owner=None):
        values.append(leases[0].value)
        store.ack(queue, leases[0], now=now)
    return values


# -- ack / dead_letter with an outcome ---------------------------------------------------
@pytest.mark.parametrize("op", ["ack", "dead"])
def test_killed_before_the_outcome_is_recorded_leaves_the_message_live_and_no_outcome(tmp_path, op):
    crash(op, tmp_path, "before-outcome")
    store = fresh(tmp_path)
    now = time.time() + LATER
    assert store.get_outcome("q", "k", now=time.time()) is None
    msg = store.peek_key("q", "k", now=now)
    assert msg is not None and msg.value == "job"  # the expired lease: READY again
    assert store.dead_letters("q", now=now) == []
    store.close()


@pytest.mark.parametrize("op", ["ack", "dead"])
def test_killed_after_the_outcome_leaves_it_recorded_and_the_message_live(tmp_path, op):
    crash(op, tmp_path, "after-outcome")
    store = fresh(tmp_path)
    out = store.get_outcome("q", "k", now=time.time())
    assert out is not None and out.value == {"n": 1}
    assert out.status == ("succeeded" if op == "ack" else "failed")
    # The redelivery a worker sees next: it finds the outcome and acks at once.
    assert drain(store, "q") == ["job"]
    store.close()


def test_killed_after_the_ack_removed_the_message_both_are_done(tmp_path):
    crash("ack", tmp_path, "after-remove")
    store = fresh(tmp_path)
    assert store.get_outcome("q", "k", now=time.time()) is not None
    assert drain(store, "q") == []
    store.close()


# -- publish and put_many: all or none ---------------------------------------------------
POINTS = ["staged", "committed", "applied-1", "applied-2", "applied-all"]


@pytest.mark.parametrize("point", POINTS)
def test_publish_killed_anywhere_is_all_or_none_for_a_new_process(tmp_path, point):
    crash("publish", tmp_path, point)
    store = fresh(tmp_path)
    got = {q: drain(store, q) for q in "abc"}
    expected = [] if point == "staged" else ["v"]
    assert got == {q: expected for q in "abc"}
    assert os.listdir(tmp_path / "journal") == []
    store.close()


@pytest.mark.parametrize("point", ["committed", "applied-1"])
def test_a_running_process_finishes_a_crashed_publish_when_it_claims(tmp_path, point):
    store = fresh(tmp_path)  # open before the crash: no open-time recovery to help
    store.put("b", PutRequest("early"), now=time.time())  # the claim has built its view
    assert [le.value for le in store.claim("b", now=time.time(), lease_timeout=30,
                                           owner=None)] == ["early"]  # fmt: skip
    crash("publish", tmp_path, point)
    now = time.time()
    store._core.qdir("b").last_relist = 0.0  # (instead of waiting RELIST_IDLE)
    for q in "bac":  # b's view was built before the crash; a's and c's are new
        leases = store.claim(q, now=now, lease_timeout=30, owner=None)
        assert [le.value for le in leases] == ["v"], q
    assert os.listdir(tmp_path / "journal") == []
    store.close()


@pytest.mark.parametrize("point", POINTS)
def test_put_many_killed_anywhere_is_all_or_none_for_a_new_process(tmp_path, point):
    crash("put_many", tmp_path, point)
    store = fresh(tmp_path)
    now = time.time()
    key_value = store.peek_key("q", "k", now=now).value  # type: ignore[union-attr]
    got = drain(store, "q")
    if point == "staged":
        assert (key_value, sorted(got)) == ("old", ["old"])
    else:
        assert (key_value, sorted(got)) == ("new", ["new", "x", "y"])
    assert store.stats("q", now=now).total == 0
    store.close()
