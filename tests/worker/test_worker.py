"""Worker behaviour on every store: success, retries, dead letters, steering, idempotency."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

import leaseq
from leaseq import Backoff, Reject, Retry, RetryLater, State

from .conftest import wait_until

FAST = Retry(max_attempts=3, backoff=0)


def test_handler_results_ack_every_message(make_queue, start):
    q = make_queue(name="jobs")
    for i in range(20):
        q.put(i, key=f"k{i}")
    seen: list[int] = []
    lock = threading.Lock()

    def handler(value: int) -> None:
        with lock:
            seen.append(value)

    running = start(leaseq.Worker(q, handler, concurrency=4, poll_interval=0.05))
    wait_until(lambda: running.worker.stats.succeeded == 20)
    stats = running.stop()
    assert sorted(seen) == list(range(20))
    assert stats.failed == 0 and stats.running == 0
    assert q.stats().total == 0


def test_failure_is_released_with_its_backoff_delay(make_queue, start, clock):
    q = make_queue(name="jobs", clock=clock)
    q.put("x", key="k")
    calls: list[int] = []

    def handler(value: str) -> None:
        calls.append(1)
        raise ValueError("flaky")

    w = leaseq.Worker(q, handler, retry=Retry(max_attempts=3, backoff=Backoff.fixed(5)))
    running = start(w)
    wait_until(lambda: w.stats.retried == 1)
    msg = q.peek("k")
    assert msg.state is State.READY and msg.attempts == 1
    assert msg.available_at == pytest.approx(clock() + 5)
    assert "ValueError: flaky" in msg.last_error
    time.sleep(0.05)
    assert len(calls) == 1  # not due yet: the retry is a later claim, not a sleep
    clock.advance(5)
    wait_until(lambda: w.stats.retried == 2)
    running.stop()
    assert len(calls) == 2


def test_exhausted_attempts_go_to_dead_letters_with_the_error(make_queue, start):
    q = make_queue(name="jobs", max_attempts=3)
    q.put({"n": 1}, key="poison")

    def handler(value: dict) -> None:
        raise RuntimeError("always broken")

    w = leaseq.Worker(q, handler, retry=FAST, poll_interval=0.05)
    running = start(w)
    wait_until(lambda: w.stats.dead_lettered == 1)
    running.stop()
    [dead] = q.dead_letters()
    assert dead.key == "poison" and dead.attempts == 3
    assert dead.last_error.startswith("RuntimeError: always broken")
    assert "Traceback" in dead.last_error and "in handler" in dead.last_error
    assert w.stats.failed == 3 and w.stats.retried == 2


def test_reject_dead_letters_at_once(make_queue, start):
    q = make_queue(name="jobs")
    q.put(1, key="k")

    def handler(value: int) -> None:
        raise Reject("bad payload")

    w = leaseq.Worker(q, handler, retry=FAST, poll_interval=0.05)
    running = start(w)
    wait_until(lambda: w.stats.dead_lettered == 1)
    running.stop()
    [dead] = q.dead_letters()
    assert dead.attempts == 1 and "bad payload" in dead.last_error


def test_retry_later_sets_the_delay(make_queue, start, clock):
    q = make_queue(name="jobs", clock=clock)
    q.put(1, key="k")
    attempts: list[int] = []

    def handler(lease: leaseq.Lease) -> str:
        attempts.append(lease.attempt)
        if lease.attempt == 1:
            raise RetryLater(60)
        return "ok"

    w = leaseq.Worker(q, handler, retry=FAST, pass_lease=True, poll_interval=0.05)
    running = start(w)
    wait_until(lambda: w.stats.retried == 1)
    assert q.peek("k").available_at == pytest.approx(clock() + 60)
    clock.advance(60)
    wait_until(lambda: w.stats.succeeded == 1)
    running.stop()
    assert attempts == [1, 2]


def test_exceptions_outside_retry_on_are_permanent(make_queue, start):
    q = make_queue(name="jobs")
    q.put(1, key="k")

    def handler(value: int) -> None:
        raise KeyError("missing")

    w = leaseq.Worker(q, handler, retry=Retry(max_attempts=5, backoff=0, retry_on=(OSError,)))
    running = start(w)
    wait_until(lambda: w.stats.dead_lettered == 1)
    running.stop()
    assert q.dead_letters()[0].attempts == 1


def test_on_failure_release_leaves_death_to_the_queue(make_queue, start):
    q = make_queue(name="jobs", max_attempts=2)
    q.put(1, key="k")

    def handler(value: int) -> None:
        raise ValueError("no")

    w = leaseq.Worker(
        q, handler, retry=Retry(max_attempts=1, backoff=0), on_failure="release", poll_interval=0.05
    )
    running = start(w)
    wait_until(lambda: w.stats.dead_lettered == 1)
    running.stop()
    dead = q.dead_letters()[0]
    assert dead.attempts == 2 and dead.dead_reason == "max_attempts"


def test_idempotent_worker_records_results_and_skips_done_keys(make_queue, start):
    q = make_queue(name="jobs")
    runs: list[str] = []

    def handler(value: dict) -> dict:
        runs.append(value["id"])
        return {"charged": value["amount"]}

    q.put({"id": "a", "amount": 5}, key="order-a")
    w = leaseq.Worker(q, handler, idempotent=True, poll_interval=0.05)
    running = start(w)
    assert q.result("order-a", timeout=10) == {"charged": 5}
    q.put({"id": "a", "amount": 5}, key="order-a")  # a duplicate delivery
    wait_until(lambda: w.stats.skipped == 1)
    running.stop()
    assert runs == ["a"]
    assert q.stats().total == 0


def test_idempotent_failure_is_recorded(make_queue, start):
    q = make_queue(name="jobs")
    q.put(1, key="k")

    def handler(value: int) -> None:
        raise Reject("invalid")

    w = leaseq.Worker(q, handler, idempotent=True, poll_interval=0.05)
    running = start(w)
    with pytest.raises(leaseq.DeadLettered, match="invalid"):
        q.result("k", timeout=10)
    running.stop()


class JsonResults(leaseq.Queue):
    """Results must be JSON, as a durable store's serializer demands; memory:// keeps
    objects, so this makes the refusal the same on every store."""

    def ack(self, lease, **kwargs):  # type: ignore[no-untyped-def]
        if "result" in kwargs:
            json.dumps(kwargs["result"])  # TypeError, before anything is written
        super().ack(lease, **kwargs)


def test_unstorable_result_is_dead_lettered_not_lost(store_url, start):
    q = JsonResults(store_url, name="jobs")
    try:
        q.put(1, key="k")
        w = leaseq.Worker(q, lambda v: object(), idempotent=True, poll_interval=0.05)
        running = start(w)
        wait_until(lambda: w.stats.dead_lettered == 1)
        running.stop()
        assert "result not storable" in q.dead_letters()[0].last_error
    finally:
        q.close()


def test_async_handler_on_a_sync_queue(make_queue, start):
    q = make_queue(name="jobs")
    q.put(2, key="k")

    async def handler(value: int) -> int:
        await asyncio.sleep(0)
        return value * 10

    w = leaseq.Worker(q, handler, idempotent=True, poll_interval=0.05)
    running = start(w)
    assert q.result("k", timeout=10) == 20
    running.stop()


async def test_async_queue_runs_async_and_sync_handlers(store_url):
    q = leaseq.AsyncQueue(store_url, name="jobs")
    try:
        for i in range(6):
            await q.put(i, key=f"k{i}")
        done: list[int] = []

        async def ahandler(value: int) -> None:
            await asyncio.sleep(0.001)
            done.append(value)

        w = leaseq.Worker(q, ahandler, concurrency=3, poll_interval=0.05)
        task = asyncio.create_task(w.run_async(handle_signals=False))
        while w.stats.succeeded < 6:
            await asyncio.sleep(0.005)
        w.stop()
        await asyncio.wait_for(task, 10)
        assert sorted(done) == list(range(6))

        await q.put(7, key="sync")
        w2 = leaseq.Worker(q, lambda v: v + 1, idempotent=True, poll_interval=0.05)
        task = asyncio.create_task(w2.run_async(handle_signals=False))
        assert await q.result("sync", timeout=10) == 8
        w2.stop()
        await asyncio.wait_for(task, 10)
    finally:
        await q.close()


def test_stop_hands_back_what_is_still_held(make_queue, start):
    q = make_queue(name="jobs", lease_timeout=300)
    q.put(1, key="slow")
    release = threading.Event()

    def handler(value: int) -> None:
        release.wait(10)

    w = leaseq.Worker(q, handler, shutdown_timeout=0.1, poll_interval=0.05)
    running = start(w)
    wait_until(lambda: w.stats.running == 1)
    running.stop()
    msg = q.peek("slow")
    assert msg.state is State.READY and msg.attempts == 1  # back at once, not at expiry
    release.set()


def test_the_decorator_form(make_queue, start):
    q = make_queue(name="jobs")

    @q.worker(idempotent=True, poll_interval=0.05)
    def double(value: int) -> int:
        return value * 2

    assert double(4) == 8  # still callable as itself
    q.put(21, key="k")
    running = start(double)
    assert q.result("k", timeout=10) == 42
    running.stop()


def test_a_worker_cannot_run_twice_at_once(make_queue, start):
    q = make_queue(name="jobs")
    w = leaseq.Worker(q, lambda v: None, poll_interval=0.05)
    running = start(w)
    wait_until(lambda: w._running)
    with pytest.raises(RuntimeError, match="already running"):
        w.run(handle_signals=False)
    running.stop()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"concurrency": 0}, ValueError),
        ({"concurrency": 1.5}, ValueError),
        ({"on_failure": "explode"}, ValueError),
        ({"retry": 3}, TypeError),
        ({"lease_timeout": 0}, ValueError),
        ({"rate_limit": -1}, ValueError),
        ({"min_interval": -1}, ValueError),
        ({"circuit_breaker": "yes"}, TypeError),
    ],
)
def test_bad_options_are_rejected(make_queue, options, error):
    q = make_queue(name="jobs")
    with pytest.raises(error):
        leaseq.Worker(q, lambda v: None, **options)


def test_handler_must_be_callable(make_queue):
    with pytest.raises(TypeError):
        leaseq.Worker(make_queue(name="jobs"), "not callable")
