"""Things specific to the sync face ``leaseq.Queue``: thread safety, ``with q.lease()``,
context managers, ``close()``, argument validation."""

from __future__ import annotations

import threading
import time

import pytest

import leaseq
from leaseq import State
from leaseq.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def q(clock):
    queue = leaseq.Queue("memory://", clock=clock, lease_timeout=10)
    yield queue
    queue.close()


# --- construction ----------------------------------------------------------------------


def test_defaults():
    with leaseq.Queue() as q:
        assert q.name == "default"
        assert q.maxsize == 0
        assert not q.closed
        q.put("x")
        lease = q.get(block=False)
        assert 29 < lease.expires_at - time.time() <= 30.5  # system clock, 30 s default
        q.ack(lease)


def test_private_memory_stores_are_private():
    with leaseq.Queue("memory://") as a, leaseq.Queue("memory://") as b:
        a.put("x", key="k")
        assert "k" not in b


def test_named_memory_store_is_shared_in_process():
    with leaseq.Queue("memory://faces-shared") as a, leaseq.Queue("memory://faces-shared") as b:
        a.put("x", key="k")
        assert "k" in b
        a.purge()


def test_a_store_object_can_be_shared_and_is_not_closed_by_the_queue():
    with leaseq.Queue("memory://") as owner:
        store = owner.store
        borrower = leaseq.Queue(store)
        owner.put("x", key="k")
        assert borrower.peek("k").value == "x"
        borrower.close()
        assert owner.peek("k").value == "x"


@pytest.mark.parametrize(
    "options",
    [
        {"lease_timeout": 0},
        {"lease_timeout": -1},
        {"max_attempts": 0},
        {"maxsize": -1},
        {"overflow": "drop"},
        {"name": ""},
    ],
    ids=repr,
)
def test_bad_constructor_options_are_value_errors(options):
    with pytest.raises(ValueError):
        leaseq.Queue("memory://", **options)


def test_bad_store_urls_are_configuration_errors():
    with pytest.raises(leaseq.ConfigurationError):
        leaseq.Queue("nosuchscheme://x")
    with pytest.raises(leaseq.ConfigurationError):
        leaseq.Queue("not a url")


def test_memory_store_takes_no_serializer():
    with pytest.raises(leaseq.ConfigurationError):
        leaseq.Queue("memory://", serializer="pickle")


def test_clock_must_be_callable():
    with pytest.raises(TypeError):
        leaseq.Queue("memory://", clock=5)  # type: ignore[arg-type]


def test_repr_names_store_and_queue():
    with leaseq.Queue("memory://", name="emails") as q:
        assert "memory://" in repr(q) and "emails" in repr(q)


# --- argument validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"priority": 1001}, ValueError),
        ({"priority": -1001}, ValueError),
        ({"priority": 1.5}, TypeError),
        ({"priority": True}, TypeError),
        ({"delay": -1}, ValueError),
        ({"delay": float("nan")}, ValueError),
        ({"delay": 1, "at": 1e9}, ValueError),
        ({"at": "tomorrow"}, TypeError),
        ({"if_ready": "buffer"}, ValueError),
        ({"if_in_flight": "replace"}, ValueError),
        ({"key": 42}, TypeError),
        ({"timeout": -1}, ValueError),
    ],
    ids=repr,
)
def test_bad_put_arguments(q, kwargs, error):
    q.put("filler", key="filler")  # "nothing stored" is checked against a non-empty queue
    with pytest.raises(error):
        q.put("x", **kwargs)
    assert q.stats().total == 1


@pytest.mark.parametrize(
    "kwargs", [{"lease_timeout": 0}, {"lease_timeout": -5}, {"timeout": -1}], ids=repr
)
def test_bad_get_arguments(q, kwargs):
    q.put("x")
    with pytest.raises(ValueError):
        q.get(**kwargs)
    assert q.qsize() == 1  # nothing was claimed


def test_bad_take_key(q):
    with pytest.raises(TypeError):
        q.take(42, block=False)  # type: ignore[arg-type]


def test_bad_extend_and_release_arguments(q):
    q.put("x", key="k")
    lease = q.get(block=False)
    with pytest.raises(ValueError):
        q.extend(lease, 0)
    with pytest.raises(ValueError):
        q.extend(lease, -1)
    with pytest.raises(ValueError):
        q.release(lease, delay=-1)
    assert q.peek("k").state is State.LEASED  # nothing happened
    q.ack(lease)


@pytest.mark.parametrize("op", ["ack", "release", "extend", "dead_letter"])
def test_lease_operations_need_a_lease(q, op):
    with pytest.raises(TypeError):
        getattr(q, op)("not a lease")


def test_prune_dead_needs_non_negative_seconds(q):
    with pytest.raises(ValueError):
        q.prune_dead(older_than=-1)


def test_keys_accepts_state_names(q):
    q.put("x", key="k")
    assert q.keys("ready") == ["k"]
    with pytest.raises(ValueError):
        q.keys("bogus")


def test_in_with_a_non_string_is_false(q):
    q.put("x", key="1")
    assert 1 not in q
    assert "1" in q


def test_extend_defaults_to_the_queue_lease_timeout(q, clock):
    q.put("x")
    lease = q.get(block=False, lease_timeout=2)
    assert q.extend(lease).expires_at == clock() + 10


# --- with q.lease() -----------------------------------------------------------------------


def test_lease_context_acks_on_success(q):
    q.put("x", key="k")
    with q.lease(timeout=1) as job:
        assert isinstance(job, leaseq.Lease)
        assert job.value == "x"
        assert q.peek("k").state is State.LEASED
    assert "k" not in q


def test_lease_context_releases_on_exception_and_reraises(q):
    q.put("x", key="k")
    with pytest.raises(KeyError, match="missing"), q.lease(timeout=1):
        raise KeyError("missing")
    msg = q.peek("k")
    assert (msg.state, msg.attempts) == (State.READY, 1)
    assert "missing" in msg.last_error
    assert q.get(block=False).attempt == 2


def test_lease_context_raises_empty_when_nothing_comes(q):
    start = time.monotonic()
    with pytest.raises(leaseq.Empty), q.lease(timeout=0.05):
        pytest.fail("the body must not run")
    assert time.monotonic() - start < 1.0


def test_lease_context_passes_lease_timeout(q, clock):
    q.put("x")
    with q.lease(timeout=1, lease_timeout=3) as job:
        assert job.expires_at == clock() + 3


def test_lease_context_body_error_wins_over_a_lost_lease(q, clock):
    q.put("x", key="k")
    with pytest.raises(RuntimeError, match="body"), q.lease(timeout=1):
        clock.advance(10)  # the lease expires while the body runs
        raise RuntimeError("body")
    assert q.get(block=False).attempt == 2


def test_lease_context_reports_a_lease_lost_during_a_successful_body(q, clock):
    # The body "succeeded" but the lease was gone: the work may run again,
    # and the caller must hear about it.
    q.put("x", key="k")
    with pytest.raises(leaseq.LeaseLost), q.lease(timeout=1):
        clock.advance(10)
    assert q.peek("k").state is State.READY


def test_lease_context_waits_for_a_message(q):
    result: list[object] = []

    def worker():
        with q.lease(timeout=5) as job:
            result.append(job.value)

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(0.05)
    q.put("late")
    t.join(timeout=5)
    assert result == ["late"]
    assert q.stats().total == 0


# --- close and context managers -----------------------------------------------------------


def test_context_manager_closes(clock):
    with leaseq.Queue("memory://", clock=clock) as q:
        q.put("x")
    assert q.closed
    with pytest.raises(leaseq.Closed):
        q.put("y")


def test_close_is_idempotent(q):
    q.close()
    q.close()
    assert q.closed


@pytest.mark.parametrize(
    "call",
    [
        lambda q: q.put("x"),
        lambda q: q.put_many(["x"]),
        lambda q: q.get(block=False),
        lambda q: q.get_many(2, block=False),
        lambda q: q.take("k", block=False),
        lambda q: q.peek("k"),
        lambda q: q.qsize(),
        lambda q: q.stats(),
        lambda q: q.keys(),
        lambda q: q.dead_letters(),
        lambda q: q.purge(),
    ],
)
def test_calls_after_close_raise_closed(q, call):
    q.close()
    with pytest.raises(leaseq.Closed):
        call(q)


def test_lease_operations_after_close_raise_closed(q):
    q.put("x")
    lease = q.get(block=False)
    q.close()
    for op in (q.ack, q.release, q.dead_letter, q.extend):
        with pytest.raises(leaseq.Closed):
            op(lease)


def test_close_wakes_a_blocked_get_with_closed(q):
    errors: list[BaseException] = []

    def wait():
        try:
            q.get(timeout=10)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    time.sleep(0.05)
    start = time.monotonic()
    q.close()
    t.join(timeout=2)
    assert not t.is_alive(), "a get() blocked across close() must not keep waiting"
    assert time.monotonic() - start < 2
    assert len(errors) == 1 and isinstance(errors[0], leaseq.Closed)


# --- thread safety of one Queue object ----------------------------------------------------


def test_one_queue_object_shared_by_many_threads(q):
    n_threads, per_thread = 8, 400
    acked: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def work(t):
        try:
            barrier.wait()
            for i in range(per_thread):
                q.put(t * per_thread + i, key=f"t{t}-{i}", priority=i % 3)
                lease = q.get(timeout=5)
                if i % 5 == 0:
                    q.release(lease, front=bool(i % 2))
                    lease = q.get(timeout=5)
                q.ack(lease)
                with lock:
                    acked.append(lease.value)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(acked) == list(range(n_threads * per_thread))
    assert q.stats().total == 0


def test_fake_clock_advanced_from_many_threads_wakes_waiters(q, clock):
    q.put("x", key="k", delay=100)
    got: list[leaseq.Lease] = []
    t = threading.Thread(target=lambda: got.append(q.take("k", timeout=10)))
    t.start()
    time.sleep(0.02)
    movers = [
        threading.Thread(target=lambda: [clock.advance(1) for _ in range(25)]) for _ in range(4)
    ]
    for m in movers:
        m.start()
    for m in movers:
        m.join()
    t.join(timeout=2)
    assert [lease.value for lease in got] == ["x"]


class _SlowStore:
    """A store object whose claims and puts take a moment, like a database's do:
    it widens the windows in which a wake-up can be lost."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name not in ("claim", "put"):
            return attr

        def slow(*args, **kwargs):
            time.sleep(0.0005)
            result = attr(*args, **kwargs)
            time.sleep(0.0005)
            return result

        return slow


def _burst_trial() -> tuple[int, int, list[int]]:
    """30 consumers block on a slow store; 30 puts arrive. Returns (consumers still
    asleep, messages still waiting, values received)."""
    clock = FakeClock()
    with leaseq.Queue("memory://", clock=clock) as owner:
        q = leaseq.Queue(_SlowStore(owner.store), clock=clock)
        got: list[int] = []
        lock = threading.Lock()

        def consume() -> None:
            try:
                lease = q.get(timeout=5)
            except (leaseq.Empty, leaseq.Closed):
                return
            with lock:
                got.append(lease.value)

        threads = [threading.Thread(target=consume, daemon=True) for _ in range(30)]
        for t in threads:
            t.start()
        time.sleep(0.1)
        for i in range(30):
            q.put(i)
        deadline = time.monotonic() + 2
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = sum(t.is_alive() for t in threads)
        left = owner.qsize()
        q.close()  # wakes any stuck consumer (with Closed) so the trial ends
        return stuck, left, sorted(got)


def test_no_wake_up_is_lost_when_store_calls_are_slow():
    # Every consumer must get one message, even when a waiter is woken while
    # another is still busy in its own claim.
    for _trial in range(10):  # the race is timing-dependent: try it several times
        stuck, left, got = _burst_trial()
        assert (stuck, left) == (0, 0), f"{stuck} consumers slept while {left} messages waited"
        assert got == list(range(30))
