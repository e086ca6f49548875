"""Shared claims: idle slots of an unpaced worker with concurrency > 1 claim together.

One idle slot at a time claims for every slot idle now and hands the extra leases
over through a buffer (``_next`` in ``leaseq/_async/worker.py``). These tests drive
the engines directly (real threads, a real event loop) to reach the moments that
matter: a claim for several slots, a stop that lands during one, a buffered lease
the heartbeat must keep or cannot keep.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import leaseq
from leaseq import State
from leaseq._async.worker import AsyncEngine
from leaseq._sync.worker import Engine

from .conftest import wait_until


class SpyQueue(leaseq.Queue):
    """Records each claim's ``n`` and result size; ``hook(n)`` runs before a claim."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims: list[tuple[int, int]] = []
        self.hook: Callable[[int], None] | None = None

    def get(self, **kwargs: Any) -> leaseq.Lease:  # type: ignore[override]
        if self.hook is not None:
            self.hook(1)
        lease = super().get(**kwargs)
        self.claims.append((1, 1))
        return lease

    def get_many(self, n: int, **kwargs: Any) -> list[leaseq.Lease]:  # type: ignore[override]
        if self.hook is not None:
            self.hook(n)
        leases = super().get_many(n, **kwargs)
        self.claims.append((n, len(leases)))
        return leases


@pytest.fixture
def spy(store_url: str, clock: Any) -> Iterator[SpyQueue]:
    q = SpyQueue(store_url, name="jobs", clock=clock, lease_timeout=300)
    yield q
    q.close()


def engine_for(q: Any, handler: Callable[..., Any], **options: Any) -> Any:
    """An engine (the face's) with a Worker's validated options, not yet running."""
    options.setdefault("poll_interval", 0.05)
    w = leaseq.Worker(q, handler, **options)
    cls = AsyncEngine if isinstance(q, leaseq.AsyncQueue) else Engine
    return cls(q, w.config, w.stats, threading.Event())


class Run:
    """``engine.run()`` on a thread (an event loop of its own for ``AsyncEngine``)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            if isinstance(self.engine, AsyncEngine):
                asyncio.run(self.engine.run())
            else:
                self.engine.run()
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.engine._stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "engine did not stop"
        if self.error is not None:
            raise self.error


def hold_claims(engine: Any) -> None:
    """Make every slot that needs work wait, as if a claim were running."""
    engine._claiming = True


def let_claim(engine: Any) -> None:
    """End the pretend claim: the first slot to recheck (within _NAP) claims for all."""
    engine._claiming = False


# -- the sync Engine (threads) -------------------------------------------------------


def test_one_claim_serves_every_idle_slot(spy):
    for i in range(6):
        spy.put(i, key=f"k{i}")
    together = threading.Barrier(3, timeout=10)
    ran: list[int] = []
    lock = threading.Lock()

    def handler(value: int) -> None:
        with lock:
            ran.append(value)
            first_three = len(ran) <= 3
        if first_three:
            together.wait()  # all three run at once, from one claim

    engine = engine_for(spy, handler, concurrency=3)
    hold_claims(engine)
    run = Run(engine)
    wait_until(lambda: engine._idle == 3)
    let_claim(engine)
    wait_until(lambda: engine._stats.succeeded == 6)
    run.join()
    assert spy.claims[0] == (3, 3)
    assert sorted(ran) == list(range(6))  # each once
    assert spy.stats().total == 0
    assert engine._held == {} and not engine._buffer


def test_many_jobs_run_once_each_with_shared_claims(spy):
    spy.put_many([(i, {"key": f"k{i}"}) for i in range(200)])
    ran: list[int] = []
    lock = threading.Lock()

    def handler(value: int) -> None:
        with lock:
            ran.append(value)

    engine = engine_for(spy, handler, concurrency=8)
    run = Run(engine)
    wait_until(lambda: engine._stats.succeeded == 200, timeout=60)
    run.join()
    assert sorted(ran) == list(range(200))
    assert spy.stats().total == 0
    assert sum(got for _, got in spy.claims) == 200
    assert engine._held == {} and not engine._buffer


def test_stop_during_a_shared_claim_hands_back_the_buffer_at_once(spy, clock):
    for i in range(3):
        spy.put(i, key=f"k{i}")
    started: list[int] = []
    finish = threading.Event()

    def handler(value: int) -> None:
        started.append(value)
        finish.wait(60)

    engine = engine_for(spy, handler, concurrency=3, shutdown_timeout=30)

    def stop_mid_claim(n: int) -> None:
        # The claim for all three is under way: stop now; the two waiting slots leave.
        assert n == 3
        engine._stop.set()
        wait_until(lambda: engine._idle == 0)

    hold_claims(engine)
    run = Run(engine)
    wait_until(lambda: engine._idle == 3)
    spy.hook = stop_mid_claim
    let_claim(engine)
    try:
        wait_until(lambda: len(started) == 1)
        # The claimer runs its own lease; the two claimed for the slots that left are
        # back at the head already, while that handler still runs (not at lease expiry,
        # not at the end of shutdown_timeout).
        kept = f"k{started[0]}"
        others = sorted({"k0", "k1", "k2"} - {kept})
        wait_until(lambda: all(spy.peek(k).state is State.READY for k in others))
        assert spy.peek(kept).state is State.LEASED
        assert [h.lease.key for h in engine._held.values()] == [kept]
        for k in others:
            msg = spy.peek(k)
            assert msg.attempts == 1 and msg.available_at <= clock()
    finally:
        finish.set()
    run.join()
    assert started == [int(kept[1:])]
    assert spy.peek(kept) is None  # acked
    assert spy.claims == [(3, 3)]


def test_a_waiting_slot_leaves_promptly_when_stop_is_set(spy):
    engine = engine_for(spy, lambda v: None, concurrency=4)
    hold_claims(engine)  # nobody claims: every slot waits for a hand-over
    run = Run(engine)
    wait_until(lambda: engine._idle == 4)
    engine._stop.set()
    wait_until(lambda: engine._idle == 0, timeout=2)  # each recheck is at most _NAP away
    run.join()
    assert spy.claims == []


def test_buffered_leases_are_held_and_kept_alive_by_the_heartbeat(spy, clock):
    for i in range(3):
        spy.put(i, key=f"k{i}")
    engine = engine_for(spy, lambda v: None, concurrency=3)
    engine._idle = 2  # two slots wait: this claim is for three
    mine = engine._next(None)
    assert mine is not None and len(engine._buffer) == 2
    # Every claimed lease is held from the claim on, taken by a slot or not.
    assert set(engine._held) == {mine.lease.token} | {h.lease.token for h in engine._buffer}
    before = [h.lease.expires_at for h in engine._buffer]
    clock.advance(200)  # two thirds of the 300 s lease gone
    engine._beat()
    after = [h.lease.expires_at for h in engine._buffer]
    assert after == [pytest.approx(clock() + 300)] * 2  # extended by the heartbeat
    assert min(after) > max(before)
    clock.advance(200)  # past the original expiry: still held
    assert all(spy.peek(h.lease.key).state is State.LEASED for h in engine._buffer)
    engine._stop.set()
    buffered = [h.lease.key for h in engine._buffer]
    engine._hand_back()
    assert not engine._buffer
    for key in buffered:
        assert spy.peek(key).state is State.READY
    assert list(engine._held) == [mine.lease.token]  # its slot removes it when done


def test_a_buffered_lease_the_heartbeat_lost_is_never_run(spy):
    for i in range(2):
        spy.put(i, key=f"k{i}")
    engine = engine_for(spy, lambda v: None, concurrency=2)
    engine._idle = 1
    mine = engine._next(None)
    [lost] = engine._buffer
    lost.lost = True  # the heartbeat could not extend it
    engine._idle = 0
    # The next slot drops it and claims again: nothing else is claimable now.
    assert engine._next(None) is None
    assert not engine._buffer
    assert list(engine._held) == [mine.lease.token]


def test_one_slot_and_paced_workers_claim_one_message_per_job(spy):
    breaker = leaseq.CircuitBreaker(failure_threshold=5, reset_timeout=30)
    for options in (
        {"concurrency": 1},
        {"concurrency": 3, "rate_limit": (1000, 1)},
        {"concurrency": 3, "min_interval": 0.001},
        {"concurrency": 3, "circuit_breaker": breaker},
    ):
        assert not engine_for(spy, lambda v: None, **options)._share, options
    assert engine_for(spy, lambda v: None, concurrency=2)._share
    spy.put_many(list(range(5)))
    engine = engine_for(spy, lambda v: None, concurrency=3, rate_limit=(1000, 1))
    run = Run(engine)
    wait_until(lambda: engine._stats.succeeded == 5)
    run.join()
    assert spy.claims and all(claim == (1, 1) for claim in spy.claims)


# -- the AsyncEngine (tasks) ---------------------------------------------------------


class AsyncSpyQueue(leaseq.AsyncQueue):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims: list[tuple[int, int]] = []
        self.hook: Callable[[int], Any] | None = None

    async def get(self, **kwargs: Any) -> leaseq.Lease:  # type: ignore[override]
        if self.hook is not None:
            await self.hook(1)
        lease = await super().get(**kwargs)
        self.claims.append((1, 1))
        return lease

    async def get_many(self, n: int, **kwargs: Any) -> list[leaseq.Lease]:  # type: ignore[override]
        if self.hook is not None:
            await self.hook(n)
        leases = await super().get_many(n, **kwargs)
        self.claims.append((n, len(leases)))
        return leases


@pytest.fixture
def aspy(tmp_path: Path, clock: Any) -> Iterator[AsyncSpyQueue]:
    # A blocking store (claims run on the store's thread, so a claiming task waits and
    # others can queue up); memory:// async slots do not share (see the next test).
    q = AsyncSpyQueue(f"sqlite:///{tmp_path}/q.db", name="jobs", clock=clock, lease_timeout=300)
    yield q
    asyncio.run(q.close())


def test_async_slots_share_claims_only_on_a_blocking_store(aspy):
    assert engine_for(aspy, lambda v: None, concurrency=3)._share
    assert not engine_for(aspy, lambda v: None, concurrency=1)._share
    mem = leaseq.AsyncQueue("memory://", name="jobs")
    assert not engine_for(mem, lambda v: None, concurrency=3)._share
    asyncio.run(mem.close())


def test_async_one_claim_serves_every_idle_slot(aspy):
    async def fill() -> None:
        await aspy.put_many([(i, {"key": f"k{i}"}) for i in range(6)])

    asyncio.run(fill())
    ran: list[int] = []
    gate: list[asyncio.Event] = []  # made on the engine's loop

    async def handler(value: int) -> None:
        ran.append(value)
        if len(ran) <= 3:
            if not gate:
                gate.append(asyncio.Event())
            if len(ran) == 3:
                gate[0].set()
            await gate[0].wait()  # all three run at once, from one claim

    engine = engine_for(aspy, handler, concurrency=3)
    hold_claims(engine)
    run = Run(engine)
    wait_until(lambda: engine._idle == 3)
    let_claim(engine)
    wait_until(lambda: engine._stats.succeeded == 6)
    run.join()
    assert aspy.claims[0] == (3, 3)
    assert sorted(ran) == list(range(6))
    assert engine._held == {} and not engine._buffer


def test_async_stop_during_a_shared_claim_hands_back_the_buffer_at_once(aspy, clock):
    async def fill() -> None:
        await aspy.put_many([(i, {"key": f"k{i}"}) for i in range(3)])

    asyncio.run(fill())
    started: list[int] = []
    finish = threading.Event()

    def handler(value: int) -> None:  # a sync handler: it runs on the engine's pool
        started.append(value)
        finish.wait(60)

    engine = engine_for(aspy, handler, concurrency=3, shutdown_timeout=30)

    async def stop_mid_claim(n: int) -> None:
        assert n == 3
        engine._stop.set()
        while engine._idle:
            await asyncio.sleep(0.005)

    hold_claims(engine)
    run = Run(engine)
    wait_until(lambda: engine._idle == 3)
    aspy.hook = stop_mid_claim
    let_claim(engine)
    peek = leaseq.Queue(aspy.store, name="jobs", clock=clock)  # a sync view of it
    try:
        wait_until(lambda: len(started) == 1)
        kept = f"k{started[0]}"
        others = sorted({"k0", "k1", "k2"} - {kept})
        wait_until(lambda: all(peek.peek(k).state is State.READY for k in others))
        assert peek.peek(kept).state is State.LEASED
    finally:
        finish.set()
    run.join()
    assert peek.peek(kept) is None
    assert aspy.claims == [(3, 3)]
    peek.close()


def test_async_waiting_slot_leaves_promptly_when_stop_is_set(aspy):
    engine = engine_for(aspy, lambda v: None, concurrency=4)
    hold_claims(engine)
    run = Run(engine)
    wait_until(lambda: engine._idle == 4)
    engine._stop.set()
    wait_until(lambda: engine._idle == 0, timeout=2)
    run.join()
    assert aspy.claims == []
