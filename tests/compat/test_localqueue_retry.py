"""``leaseq.compat.localqueue.retry``: localqueue.retry's names over leaseq.retry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from leaseq.compat.localqueue import retry as lr


def test_persistent_retry_counts_across_retryers(tmp_path: Path) -> None:
    path = str(tmp_path / "retries.sqlite3")
    calls: list[str] = []

    @lr.persistent_retry(key_fn=lr.key_from_argument("job_id"), max_tries=3, store_path=path)
    def run(job_id: str) -> None:
        calls.append(job_id)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        run("job:1")
    assert calls == ["job:1"] * 3
    # A new process (a new decorator on the same file) sees the spent budget.

    @lr.persistent_retry(key_fn=lr.key_from_argument("job_id"), max_tries=3, store_path=path)
    def run_again(job_id: str) -> None:
        calls.append("again")

    with pytest.raises(lr.PersistentRetryExhausted) as info:
        run_again("job:1")
    assert info.value.key == "job:1" and info.value.attempts == 3
    assert "again" not in calls


def test_retryer_record_reset_and_copy(tmp_path: Path) -> None:
    r = lr.PersistentRetrying(
        key="k", max_tries=2, store=lr.SQLiteAttemptStore(str(tmp_path / "a.sqlite3"))
    )
    with pytest.raises(ValueError):
        r(lambda: (_ for _ in ()).throw(ValueError("x")))
    rec = r.get_record("k")
    assert rec is not None and rec.exhausted and rec.attempts == 2
    r.reset("k")
    assert r.get_record("k") is None
    assert r(lambda: 42) == 42
    c = r.copy(max_tries=5)
    assert c.policy.max_attempts == 5 and c.key == "k" and r.policy.max_attempts == 2


def test_retry_option_maps_exception_types(tmp_path: Path) -> None:
    store = lr.MemoryAttemptStore()
    calls = []

    @lr.persistent_retry(key="k2", max_tries=5, retry=ConnectionError, store=store)
    def f() -> None:
        calls.append(1)
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        f()
    assert calls == [1]
    with pytest.raises(TypeError, match="before"):
        lr.persistent_retry(key="k", before=print)


def test_key_helpers() -> None:
    @dataclass
    class Task:
        id: int

    store = lr.MemoryAttemptStore()
    seen: list[str] = []

    @lr.persistent_retry(key_fn=lr.idempotency_key_from_id("task", prefix="video"), store=store)
    def work(task: Task) -> str:
        seen.append("x")
        return "ok"

    assert work(Task(7)) == "ok"
    r = lr.PersistentRetrying(key_fn=lr.key_from_attr("task", "id", prefix="video"), store=store)
    assert r.key_for(work.__wrapped__, (Task(7),), {}) == "video:7"  # type: ignore[attr-defined]
    lr.close_default_store(all_threads=True)


async def test_persistent_async_retry(tmp_path: Path) -> None:
    calls: list[int] = []

    @lr.persistent_async_retry(key="a", max_tries=2, store=lr.MemoryAttemptStore())
    async def f() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("once")
        return "done"

    assert await f() == "done" and calls == [1, 1]
