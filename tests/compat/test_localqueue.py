"""``leaseq.compat.localqueue``: localqueue's documented behaviour over sqlite://, fixed."""

from __future__ import annotations

import asyncio
import queue as stdlib_queue
import threading
from pathlib import Path

import pytest

import leaseq
from leaseq.compat import localqueue as lq
from leaseq.compat.localqueue import (
    AtMostOnceDelivery,
    BoundedBackpressure,
    EffectivelyOnceDelivery,
    PersistentQueue,
    PersistentWorkerConfig,
    PriorityOrdering,
    PublishSubscribeRouting,
    QoS,
    QueueMessage,
    QueuePolicySet,
    QueueSpec,
    QueueStats,
    RejectingBackpressure,
    StaticFanoutSubscriptions,
)
from leaseq.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock):
    opened: list[PersistentQueue] = []

    def make(name: str = "jobs", **options) -> PersistentQueue:
        options.setdefault("store_path", str(tmp_path / "q.sqlite3"))
        options.setdefault("clock", clock)
        q = PersistentQueue(name, **options)
        opened.append(q)
        return q

    yield make
    for q in opened:
        q.close()


# -- queue.Queue-style methods -------------------------------------------------------
def test_put_get_task_done_join(make) -> None:
    q = make()
    msg = q.put({"n": 1})
    assert isinstance(msg, QueueMessage)
    assert (msg.queue, msg.state, msg.attempts, msg.value) == ("jobs", "ready", 0, {"n": 1})
    q.put_nowait(2)
    assert q.qsize() == 2 and not q.empty() and not q.full()
    assert q.get() == {"n": 1}
    assert q.get_nowait() == 2
    assert q.stats().inflight == 2
    q.task_done()
    q.task_done()
    q.join()  # returns: both done
    assert q.stats().total == 0 and q.empty()
    with pytest.raises(ValueError, match="task_done"):
        q.task_done()


def test_get_nowait_and_timeout_raise_queue_empty(make) -> None:
    q = make()
    with pytest.raises(stdlib_queue.Empty):
        q.get_nowait()
    with pytest.raises(stdlib_queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(stdlib_queue.Empty):
        q.get_message(block=False)


def test_task_done_acks_the_callers_own_message(make) -> None:
    """localqueue acked the oldest unfinished get() of ANY thread; here each thread
    finishes its own, so a slow thread's message is never acked by a fast one."""
    q = make()
    q.put("slow")
    q.put("fast")
    got_slow = threading.Event()
    finish_slow = threading.Event()

    def slow() -> None:
        assert q.get() == "slow"
        got_slow.set()
        finish_slow.wait(10)
        q.task_done()

    t = threading.Thread(target=slow)
    t.start()
    assert got_slow.wait(10)
    assert q.get() == "fast"
    q.task_done()  # acks "fast", not the older "slow"
    (held,) = [k for k in q.leaseq_queue.keys("leased")]
    assert q.leaseq_queue.peek(held).value == "slow"
    joined = threading.Event()
    j = threading.Thread(target=lambda: (q.join(), joined.set()))
    j.start()
    assert not joined.wait(0.1)  # "slow" is unfinished
    finish_slow.set()
    t.join(10)
    j.join(10)
    assert joined.is_set() and q.stats().total == 0


def test_join_waits_for_other_threads(make) -> None:
    q = make()
    for i in range(4):
        q.put(i)
    seen: list[int] = []

    def consume() -> None:
        while True:
            try:
                v = q.get(timeout=0.2)
            except stdlib_queue.Empty:
                return
            seen.append(v)
            q.task_done()

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    q.join()
    assert sorted(seen) == [0, 1, 2, 3]


# -- explicit message methods ---------------------------------------------------------
def test_get_message_ack_release_dead_letter(make, clock: FakeClock) -> None:
    q = make()
    q.put("a")
    m = q.get_message(leased_by="w1")
    assert (m.state, m.attempts, m.leased_by) == ("inflight", 1, "w1")
    assert m.leased_until == clock() + 30
    back = q.release(m, delay=5, error=ValueError("flaky"))
    assert back.state == "ready" and back.available_at == clock() + 5
    assert back.last_error == {
        "type": "ValueError",
        "message": "flaky",
        "text": "ValueError: flaky",
    }
    assert back.failed_at == clock()
    clock.advance(5)
    m2 = q.get_message()
    assert m2.attempts == 2 and [e["event"] for e in m2.attempt_history][-1] == "claimed"
    dead = q.dead_letter(m2, error="bad payload")
    assert dead.state == "dead" and dead.last_error["message"] == "bad payload"
    assert [d.id for d in q.dead_letters()] == [m.id]
    q.put("b")
    m3 = q.get_message()
    q.ack(m3)
    assert q.stats().total == 1  # only the dead letter


def test_ack_is_fenced_by_the_lease(make, clock: FakeClock) -> None:
    """localqueue acked by id: a consumer whose lease expired could ack the
    redelivery someone else was working on. Here it gets LeaseLost."""
    q = make(lease_timeout=10)
    q.put("job")
    first = q.get_message()
    clock.advance(11)
    second = q.get_message()
    assert second.id == first.id and second.attempts == 2
    with pytest.raises(leaseq.LeaseLost):
        q.ack(first)
    q.ack(second)
    with pytest.raises(ValueError, match="carries no lease"):
        q.ack(q.put("x"))


def test_inspect_requeue_prune_count_purge(make, clock: FakeClock) -> None:
    q = make()
    put = q.put("v", dedupe_key="k")
    assert q.inspect(put.id).dedupe_key == "k"
    with pytest.raises(LookupError):
        q.inspect("nope")
    q.dead_letter(q.get_message(), error="x")
    clock.advance(100)
    q.put("w")
    q.dead_letter(q.get_message(), error="y")
    assert q.count_dead_letters_older_than(50) == 1
    assert q.count_dead_letters_older_than(0) == 2
    assert q.prune_dead_letters(50) == 1
    (left,) = q.dead_letters()
    assert left.value == "w"
    again = q.requeue_dead(left)
    assert again.state == "ready" and again.attempts == 0
    assert q.purge() == 1 and q.stats().total == 0


def test_stats_fields(make, clock: FakeClock) -> None:
    q = make()
    q.put(1)
    q.put(2, delay=60)
    q.get_message(leased_by="w")
    q.put(3)
    clock.advance(4)
    st = q.stats()
    assert isinstance(st, QueueStats)
    assert (st.ready, st.delayed, st.inflight, st.dead, st.total) == (1, 1, 1, 0, 3)
    assert st.by_worker_id == {"w": 1}
    assert st.oldest_ready_age_seconds == 4 and st.oldest_inflight_age_seconds == 4
    assert st.average_inflight_age_seconds == 4
    assert st.leases_by_worker_id == {"w": 1}
    assert st.last_seen_by_worker_id == {"w": clock() - 4}


def test_worker_sightings_add_up_across_queue_objects(make, clock: FakeClock) -> None:
    a, b = make(), make()
    for i in range(5):
        a.put(i)
    a.ack(a.get_message(leased_by="w1"))
    clock.advance(1)
    b.ack(b.get_message(leased_by="w1"))
    clock.advance(1)
    a.get(leased_by="w2")
    b.get_message()  # no worker id: not a sighting
    clock.advance(3)
    st = make().stats()  # a third object reads what both recorded
    assert st.leases_by_worker_id == {"w1": 2, "w2": 1}
    assert st.last_seen_by_worker_id == {"w1": clock() - 4, "w2": clock() - 3}
    assert st.by_worker_id == {"w2": 1, "": 1}
    assert st.average_inflight_age_seconds == 3
    a.purge()
    assert make().stats().leases_by_worker_id == {}


def test_dedupe_key_reuses_the_live_message(make) -> None:
    q = make()
    a = q.put("first", dedupe_key="order-1")
    b = q.put("second", dedupe_key="order-1")
    assert a.id == b.id and b.value == "first" and q.qsize() == 1
    q.get_message()
    c = q.put("third", dedupe_key="order-1")  # in flight: still the same message
    assert c.id == a.id


def test_persists_across_queue_objects(make, tmp_path: Path) -> None:
    make().put("durable")
    q2 = make()
    assert q2.get() == "durable"


# -- policies ----------------------------------------------------------------------
def test_priority_ordering_with_a_moving_clock(make, clock: FakeClock) -> None:
    q = make(ordering_policy=PriorityOrdering())
    q.put("low", priority=1)
    clock.advance(0.002)
    q.put("high", priority=10)
    clock.advance(0.002)
    q.put("mid", priority=5)
    assert [q.get() for _ in range(3)] == ["high", "mid", "low"]
    with pytest.raises(ValueError):
        q.put("neg", priority=-1)


def test_fifo_ordering_ignores_priority(make) -> None:
    q = make()  # FifoReadyOrdering by default
    q.put("first", priority=1)
    q.put("second", priority=9)
    assert [q.get(), q.get()] == ["first", "second"]


def test_at_most_once_removes_before_returning(make, clock: FakeClock) -> None:
    q = make(delivery_policy=AtMostOnceDelivery(), lease_timeout=1)
    q.put("once")
    q.put("twice")
    m = q.get_message()
    assert m.value == "once" and m.state == "acked"
    q.ack(m)  # nothing to do
    assert q.get() == "twice"
    clock.advance(5)  # a crash now loses it: nothing is redelivered
    assert q.stats().total == 0
    q.task_done()


def test_effectively_once_requires_dedupe_key_and_skips_done_keys(make) -> None:
    q = make(delivery_policy=EffectivelyOnceDelivery())
    with pytest.raises(ValueError, match="dedupe_key"):
        q.put("x")
    calls: list[str] = []

    @lq.persistent_worker(q)
    def handle(value: str) -> str:
        calls.append(value)
        return value.upper()

    assert handle.config.idempotent
    q.put("a", dedupe_key="k1")
    _drain(handle, q)
    q.put("a-again", dedupe_key="k1")  # the key already succeeded: not run again
    _drain(handle, q)
    assert calls == ["a"]
    assert q.leaseq_queue.result("k1", timeout=1) == "A"


def test_no_deduplication_refuses_keys(make) -> None:
    q = make(deduplication_policy=lq.NoDeduplication())
    with pytest.raises(ValueError, match="NoDeduplication"):
        q.put("x", dedupe_key="k")


def test_bounded_backpressure_blocks_and_rejecting_raises(make) -> None:
    q = make(backpressure=BoundedBackpressure(maxsize=1))
    q.put(1)
    assert q.full()
    with pytest.raises(stdlib_queue.Full):
        q.put(2, timeout=0.01)
    r = make("other", backpressure=RejectingBackpressure(maxsize=1))
    r.put(1)
    with pytest.raises(stdlib_queue.Full):
        r.put(2, block=True)  # no waiting at all
    with pytest.raises(ValueError, match="disagree"):
        make("x", maxsize=3, backpressure=BoundedBackpressure(maxsize=1))


def test_publish_subscribe_fans_out(make) -> None:
    q = make(
        "events",
        routing_policy=PublishSubscribeRouting(),
        subscription_policy=StaticFanoutSubscriptions(["billing", "audit"]),
    )
    q.put({"order": 1})
    billing = make("events.billing")
    audit = make("events.audit")
    assert billing.get() == {"order": 1} and audit.get() == {"order": 1}
    with pytest.raises(ValueError, match="StaticFanoutSubscriptions"):
        make("bad", routing_policy=PublishSubscribeRouting())


def test_static_subscriptions_alone_stay_point_to_point(make) -> None:
    q = make("p2p", subscription_policy=StaticFanoutSubscriptions(["a"]))
    q.put(1)
    assert q.get() == 1


def test_lease_policy_sets_lease_timeout(make, clock: FakeClock) -> None:
    q = make(lease_policy=lq.FixedLeaseTimeout(timeout=5))
    q.put(1)
    assert q.get_message().leased_until == clock() + 5


def test_dispatch_and_notification_callbacks(make) -> None:
    seen: list[object] = []
    note = lq.InProcessNotification()
    q = make(dispatch_policy=lq.CallbackDispatcher(seen.append), notification_policy=note)
    assert not note.wait(0)
    m = q.put("x")
    assert seen == [m] and note.wait(0)
    heard: list[object] = []
    q2 = make("n2", notification_policy=lq.CallbackNotification(heard.append))
    q2.put("y")
    assert [h.value for h in heard] == ["y"]


def test_policy_set_and_conflicts(make) -> None:
    ps = QueuePolicySet.at_most_once(ordering_policy=PriorityOrdering())
    q = make(policy_set=ps)
    assert isinstance(q.delivery_policy, AtMostOnceDelivery)
    assert isinstance(q.ordering_policy, PriorityOrdering)
    with pytest.raises(ValueError, match="both explicitly and in policy_set"):
        make("c", policy_set=ps, ordering_policy=lq.FifoReadyOrdering())
    eo = QueuePolicySet.effectively_once(result_policy=lq.ReturnStoredResult())
    assert isinstance(eo.delivery_policy, EffectivelyOnceDelivery)
    assert eo.delivery_policy.result_policy.store_results
    assert isinstance(QueuePolicySet.at_least_once().delivery_policy, lq.AtLeastOnceDelivery)
    with pytest.raises(TypeError, match="unknown PersistentQueue option"):
        make("d", ordering=PriorityOrdering())


def test_descriptive_policies_are_values() -> None:
    assert lq.LOCAL_AT_LEAST_ONCE.delivery == "at-least-once"
    assert lq.RemoteQueuePlacement().locality == "remote"
    assert lq.PushConsumption().pattern == "push"
    assert lq.TransactionalOutboxCommit(outbox_store="s").model == "transactional-outbox"
    assert lq.BestEffortOrdering() == lq.BestEffortOrdering()


def test_queue_spec_builds_queue_and_worker_config(make, tmp_path: Path) -> None:
    spec = (
        QueueSpec()
        .with_name("spec-q")
        .with_qos(QoS.AT_MOST_ONCE)
        .with_dead_letter_queue()
        .with_retry(max_tries=4)
        .with_dead_letter_on_failure(False)
        .with_release_delay(7)
        .with_min_interval(0.5)
        .with_circuit_breaker(3, 10)
    )
    q = spec.build_queue(store_path=str(tmp_path / "q.sqlite3"))
    try:
        assert q.name == "spec-q" and isinstance(q.delivery_policy, AtMostOnceDelivery)
        assert q.retry_defaults == {"max_tries": 4}
        q2 = PersistentQueue.from_spec(spec.with_name("other"), store_path=str(tmp_path / "q2"))
        assert q2.name == "other"
        q2.close()
    finally:
        q.close()
    cfg = spec.build_worker_config()
    assert (cfg.dead_letter_on_failure, cfg.release_delay, cfg.min_interval) == (False, 7, 0.5)
    assert (cfg.circuit_breaker_failures, cfg.circuit_breaker_cooldown) == (3, 10)
    assert cfg.retry_kwargs == {"max_tries": 4}


# -- workers -----------------------------------------------------------------------
def _drain(worker: leaseq.Worker, q: PersistentQueue) -> None:
    """Run the worker on a thread until the queue holds no live message."""
    t = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
    t.start()
    try:
        lq_ = q.leaseq_queue
        deadline = 30.0
        import time

        end = time.monotonic() + deadline
        while time.monotonic() < end:
            st = lq_.stats()
            if st.ready + st.delayed + st.leased == 0:
                break
            time.sleep(0.01)
    finally:
        worker.stop()
        t.join(30)


def test_persistent_worker_retries_then_dead_letters(make) -> None:
    q = make(clock=None)
    config = PersistentWorkerConfig(max_tries=2, wait=0)
    calls: list[object] = []

    @lq.persistent_worker(q, config=config)
    def handle(payload: dict) -> None:
        calls.append(payload)
        if payload.get("fail"):
            raise ConnectionError("down")

    assert handle({"direct": True}) is None  # still callable as itself
    q.put({"fail": True})
    q.put({"ok": 1})
    _drain(handle, q)
    assert calls.count({"fail": True}) == 2 and {"ok": 1} in calls
    (dead,) = q.dead_letters()
    assert dead.attempts == 2 and dead.last_error["type"] == "ConnectionError"


def test_worker_config_maps_onto_worker_options(make) -> None:
    q = make(retry_defaults={"max_tries": 5})
    cfg = PersistentWorkerConfig(
        dead_letter_on_exhaustion=False,
        release_delay=30,
        min_interval=1,
        circuit_breaker_failures=2,
        circuit_breaker_cooldown=9,
        retry=ConnectionError,
    )
    w = lq.persistent_worker(q, config=cfg)(lambda v: v)
    c = w.config
    assert c.retry.max_attempts == 5  # the queue's retry defaults
    assert c.retry.retry_on == (ConnectionError,)
    assert c.retry.backoff == leaseq.Backoff.fixed(30)
    assert c.on_failure == "release" and c.limiter is not None  # min_interval
    assert c.breaker is not None
    w2 = lq.persistent_worker(q, config=cfg, max_tries=1, dead_letter_on_failure=True)(print)
    assert w2.config.retry.max_attempts == 1 and w2.config.on_failure == "dead_letter"
    with pytest.raises(TypeError, match="before_sleep"):
        lq.persistent_worker(q, before_sleep=print)


def test_persistent_async_worker_does_not_block_the_loop(make) -> None:
    q = make(clock=None)
    done: list[int] = []

    @lq.persistent_async_worker(q, max_tries=1)
    async def handle(value: int) -> None:
        await asyncio.sleep(0)
        done.append(value)

    assert isinstance(handle.queue, leaseq.AsyncQueue)
    for i in range(3):
        q.put(i)

    async def main() -> int:
        ticks = 0
        task = asyncio.create_task(handle.run_async(handle_signals=False))
        while len(done) < 3:
            ticks += 1  # the loop keeps turning while the worker waits and works
            await asyncio.sleep(0.005)
        handle.stop()
        await asyncio.wait_for(task, 30)
        return ticks

    assert asyncio.run(asyncio.wait_for(main(), 30)) > 0
    assert sorted(done) == [0, 1, 2]
