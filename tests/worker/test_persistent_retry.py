"""leaseq.retry: attempt counts that survive restarts, kept in an ordinary queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import leaseq
from leaseq.retry import (
    PersistentRetryExhausted,
    PersistentRetrying,
    key_from_argument,
    key_from_attr,
    persistent_async_retry,
    persistent_retry,
)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/retries.db"


def test_retries_in_process_until_success(url):
    calls: list[str] = []

    @persistent_retry(key_fn=key_from_argument("job_id"), max_attempts=3, store=url)
    def run(job_id: str) -> str:
        calls.append(job_id)
        if len(calls) < 3:
            raise ConnectionError("flaky")
        return "ok"

    assert run("j1") == "ok"
    assert calls == ["j1", "j1", "j1"]
    assert run.retry.get_record("j1") is None  # success clears the record
    run.retry.close()


def test_counts_survive_a_restart_and_exhaustion_sticks(url):
    calls = 0

    def job(job_id: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt  # the process "dies" during attempt 2
        raise ConnectionError("down")

    first = PersistentRetrying(key_fn=key_from_argument("job_id"), max_attempts=3, store=url)
    with pytest.raises(KeyboardInterrupt):
        first(job, "j1")
    assert first.get_record("j1").attempts == 2
    first.close()

    second = PersistentRetrying(key_fn=key_from_argument("job_id"), max_attempts=3, store=url)
    with pytest.raises(ConnectionError):
        second(job, "j1")  # attempt 3 of 3: the budget is spent
    assert calls == 3
    record = second.get_record("j1")
    assert record.exhausted and record.attempts == 3
    with pytest.raises(PersistentRetryExhausted) as info:
        second(job, "j1")
    assert calls == 3  # not called again
    assert (info.value.key, info.value.attempts) == ("j1", 3)
    second.reset("j1")
    with pytest.raises(ConnectionError):
        second(job, "j1")
    assert calls == 6  # a fresh budget of 3
    second.close()


def test_non_retryable_errors_propagate_at_once(url):
    calls = 0

    @persistent_retry(key="fixed", max_attempts=5, retry_on=(ConnectionError,), store=url)
    def run() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bug")

    with pytest.raises(ValueError):
        run()
    assert calls == 1
    assert run.retry.get_record("fixed").attempts == 1
    run.retry.close()


def test_backoff_waits_between_attempts(url):
    waits: list[float] = []
    retry = PersistentRetrying(
        key="k", max_attempts=3, backoff=leaseq.Backoff.fixed(2.5), store=url, sleep=waits.append
    )

    def fail() -> None:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        retry(fail)
    assert waits == [2.5, 2.5]
    retry.close()


def test_key_from_attr_with_prefix(url):
    @dataclass
    class Task:
        id: int

    @persistent_retry(key_fn=key_from_attr("task", "id", prefix="video"), store=url)
    def run(task: Task) -> int:
        return task.id

    assert run(Task(7)) == 7
    assert run.retry.key_for(run.__wrapped__, (Task(7),), {}) == "video:7"
    run.retry.close()


def test_key_or_key_fn_is_required(url):
    with pytest.raises(TypeError):
        PersistentRetrying(store=url)
    with pytest.raises(TypeError):
        PersistentRetrying(key="a", key_fn=lambda: "b", store=url)


async def test_async_twin(url):
    calls = 0

    @persistent_async_retry(key_fn=key_from_argument("n"), max_attempts=2, store=url)
    async def run(n: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError
        return n * 2

    assert await run(4) == 8
    assert calls == 2
    run.retry.close()


def test_tenacity_style_options_are_accepted(url):
    class stop_after_attempt:  # what tenacity.stop_after_attempt carries
        __module__ = "tenacity.stop"

        def __init__(self, n: int) -> None:
            self.max_attempt_number = n

    retry = PersistentRetrying(key="t", stop=stop_after_attempt(2), store=url, sleep=lambda s: None)
    assert retry.policy.max_attempts == 2
    retry.close()


@pytest.mark.slow
def test_sigkill_mid_call_still_counts(tmp_path, url):
    script = tmp_path / "victim.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal
            from leaseq.retry import persistent_retry

            @persistent_retry(key="job", max_attempts=2, store={url!r})
            def run():
                os.kill(os.getpid(), signal.SIGKILL)

            run()
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(Path(leaseq.__file__).parents[1]))
    for _ in range(2):
        proc = subprocess.run([sys.executable, str(script)], env=env)
        assert proc.returncode == -signal.SIGKILL
    retry = PersistentRetrying(key="job", max_attempts=2, store=url)
    with pytest.raises(PersistentRetryExhausted):
        retry(lambda: "never runs")
    retry.close()
