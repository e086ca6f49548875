"""``leaseq.compat.femtoqueue``: femtoqueue 0.4's documented behaviour, without its bugs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import leaseq
from leaseq.compat.femtoqueue import QUEUE, FemtoQueue, FemtoTask
from leaseq.stores.file import _format as F
from leaseq.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock):
    opened: list[FemtoQueue] = []

    def make(node_id: str = "node1", **options) -> FemtoQueue:
        options.setdefault("clock", clock)
        q = FemtoQueue(tmp_path / "fq", node_id, **options)
        opened.append(q)
        return q

    yield make
    for q in opened:
        q.close()


def drain(q: FemtoQueue) -> list[bytes]:
    out = []
    while task := q.pop():
        out.append(task.data)
        q.done(task)
    return out


def test_readme_example(make):
    q = make()
    q.push(b"foobar")
    seen = []
    while task := q.pop():
        seen.append(task.data)
        q.done(task)
    assert seen == [b"foobar"]
    assert q.pop() is None


def test_tasks_come_out_in_insertion_order(make, clock):
    q = make()
    for i in range(50):
        q.push(f"t{i}".encode())  # the fake clock does not move: order is not time-based
    assert drain(q) == [f"t{i}".encode() for i in range(50)]


def test_push_returns_the_id_pop_reports(make):
    q = make()
    tid = q.push(b"x")
    task = q.pop()
    assert task == FemtoTask(tid, b"x")


def test_data_is_bytes_untouched(make):
    q = make()
    payload = bytes(range(256))
    q.push(payload)
    assert q.pop().data == payload
    with pytest.raises(TypeError):
        q.push("not bytes")


def test_a_restarted_node_resumes_its_own_in_progress_task_first(make):
    first = make("node1")
    for i in range(3):
        first.push(f"t{i}".encode())
    held = first.pop()
    first.close()  # the worker "crashes" while processing t0
    other = make("node2")
    assert other.pop().data == b"t1"  # node1's task is not stale: others skip it
    restarted = make("node1")
    resumed = restarted.pop()
    assert resumed.id == held.id and resumed.data == b"t0"  # its own task first
    restarted.done(resumed)
    assert restarted.pop().data == b"t2"


def test_stale_tasks_of_other_nodes_are_taken_over_judged_by_claim_time(make, clock):
    a = make("a", timeout_stale_ms=30_000)
    b = make("b", timeout_stale_ms=30_000)
    a.push(b"old")
    a.push(b"next")
    clock.advance(3600)  # a backlog far older than the timeout (femtoqueue's bug)
    task = a.pop()
    assert task.data == b"old"
    nxt = b.pop()
    assert nxt.data == b"next"  # not a's task: claimed a moment ago
    b.done(nxt)
    assert b.pop() is None
    clock.advance(29.9)
    assert b.pop() is None  # still fresh, counted from the claim
    clock.advance(0.1)
    taken = b.pop()
    assert taken.id == task.id and taken.data == b"old"
    with pytest.raises(leaseq.LeaseLost):
        a.done(task)  # a was too slow: its done() must not complete b's task
    b.done(taken)
    assert b.pop() is None


def test_schedule_delivers_once_the_time_has_passed(make, clock):
    q = make()
    later = int((clock() + 10) * 1_000_000)
    sid = q.schedule(b"later", later)
    q.push(b"now")
    assert q.pop().data == b"now"
    assert q.pop() is None
    clock.advance(10)
    task = q.pop()
    assert task == FemtoTask(sid, b"later")  # keeps its id


def test_a_past_schedule_goes_to_the_back(make, clock):
    q = make()
    q.push(b"first")
    q.schedule(b"past", int((clock() - 100) * 1_000_000))
    assert drain(q) == [b"first", b"past"]


def test_fail_keeps_the_task_as_a_dead_letter(make, tmp_path, clock):
    q = make()
    q.push(b"bad")
    q.fail(q.pop())
    assert q.pop() is None
    with leaseq.Queue(f"file://{tmp_path / 'fq'}", name=QUEUE, clock=clock) as lq:
        [dead] = lq.dead_letters()
    assert dead.value == b"bad" and dead.last_error == "failed"


def test_done_twice_or_on_an_unknown_task_raises(make):
    q = make()
    q.push(b"x")
    task = q.pop()
    q.done(task)
    with pytest.raises(KeyError):
        q.done(task)
    with pytest.raises(KeyError):
        q.fail(FemtoTask("nope", b""))


def test_a_corrupt_task_file_is_quarantined_and_pop_never_spins(make, tmp_path):
    q = make()
    q.push(b"good")
    name = F.ready_name(0, False, F.enc_t(0.0), 1, 0, None, "-", "00000000000000000000c-1")
    (tmp_path / "fq" / f"q={QUEUE}" / "ready" / name).write_bytes(b"\x00torn")
    assert q.pop().data == b"good"  # the corrupt file sorts first, and is skipped
    assert q.pop() is None
    with leaseq.Queue(f"file://{tmp_path / 'fq'}", name=QUEUE) as lq:
        [dead] = lq.dead_letters()
    assert dead.id == "00000000000000000000c-1" and "corrupt" in dead.last_error


def test_sync_after_write_fsyncs_data_and_directories(make, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    q = make(sync_after_write=True)
    q.push(b"x")
    assert synced[0] == "file" and "dir" in synced
    plain = make("node2", sync_after_write=False)
    synced.clear()
    plain.push(b"y")
    assert synced == []


@pytest.mark.parametrize(
    ("node_id", "timeout"), [("", 30_000), ("n" * 200, 30_000), ("node", 0), ("node", -5)]
)
def test_bad_arguments_are_refused(tmp_path, node_id, timeout):
    with pytest.raises(ValueError):
        FemtoQueue(tmp_path / "fq", node_id, timeout_stale_ms=timeout)
