"""The faces' fast path on ``memory://`` (``leaseq.stores._memory_fast``) against the
general path: the same random operations, run once through a queue that has the
fast path and once through one whose fast path was removed, must give the same
results and leave the same messages. Ids and tokens differ between two stores,
so they are renamed to their order of appearance before comparing."""

from __future__ import annotations

import asyncio
import inspect
import random
from typing import Any

import pytest

import leaseq
from leaseq import Lease, Message
from leaseq.testing import FakeClock

FAST = ("put", "get", "ack")


def _general(q: Any) -> Any:
    """The same queue type without its fast path (as ``close`` leaves it)."""
    for name in FAST:
        delattr(q, name)
    return q


class _Names:
    """Renames ids and tokens to their order of first appearance."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, x: str) -> str:
        return self.seen.setdefault(x, f"#{len(self.seen)}")

    def norm(self, r: Any) -> Any:
        if isinstance(r, Lease):
            key = self(r.key) if r.key == r.message.id else r.key
            return (
                "Lease",
                key,
                r.value,
                self(r.token),
                r.attempt,
                r.expires_at,
                self.norm(r.message),
            )
        if isinstance(r, Message):
            key = self(r.key) if r.key == r.id else r.key
            return ("Message", self(r.id), key, *r[2:])
        if isinstance(r, list | tuple):
            return [self.norm(x) for x in r]
        return r


def _script(seed: int, steps: int) -> list[tuple[Any, ...]]:
    """Random operations, as data, so two queues can replay the same ones."""
    rng = random.Random(seed)
    ops: list[tuple[Any, ...]] = []
    for i in range(steps):
        r = rng.random()
        if r < 0.30:
            kw: dict[str, Any] = {}
            if rng.random() < 0.5:
                kw["key"] = f"k{rng.randrange(6)}"
            if rng.random() < 0.3:
                kw["priority"] = rng.choice((-1, 0, 5))
            if rng.random() < 0.1:
                kw["delay"] = rng.choice((1.0, 5.0))
            if rng.random() < 0.1:
                kw["if_in_flight"] = "buffer"
            ops.append(("put", i, kw))
        elif r < 0.55:
            opts = rng.choice(
                ({}, {}, {"lease_timeout": 3.0}, {"owner": "w1", "timeout": 0}, {"block": False})
            )
            ops.append(("get", opts))
        elif r < 0.80:
            ops.append(("ack", rng.random(), rng.random() < 0.1))
        elif r < 0.87:
            ops.append(("release", rng.random(), rng.random() < 0.5))
        elif r < 0.93:
            ops.append(("advance", rng.choice((0.5, 2.0, 10.0, 31.0))))
        elif r < 0.96:
            ops.append(("take", f"k{rng.randrange(6)}"))
        elif r < 0.98:
            ops.append(("extend", rng.random()))
        else:
            ops.append(("purge",))
    return ops


def _replay(q: Any, clock: FakeClock, ops: list[tuple[Any, ...]], many: bool = False) -> list[Any]:
    names = _Names()
    held: list[Lease] = []
    out: list[Any] = []

    def pick(x: float) -> Lease | None:
        # Any lease ever handed out, stale ones too: fencing must agree as well.
        return held[int(x * len(held))] if held else None

    for op in ops:
        try:
            kind = op[0]
            if kind == "put" and many:  # the store's general insert (_insert)
                r: Any = q.put_many([(op[1], op[2])])[0]
            elif kind == "put":
                r = q.put(op[1], **op[2])
            elif kind == "get":
                r = q.get(**{"block": False, **op[1]}) if op[1] else _get_plain(q)
                held.append(r)
            elif kind == "ack":
                lease = pick(op[1])
                r = None if lease is None else (q.ack(lease, result=1) if op[2] else q.ack(lease))
            elif kind == "release":
                lease = pick(op[1])
                r = None if lease is None else q.release(lease, front=op[2])
            elif kind == "advance":
                r = clock.advance(op[1])
            elif kind == "take":
                r = q.take(op[1], block=False)
                held.append(r)
            elif kind == "extend":
                lease = pick(op[1])
                r = None if lease is None else q.extend(lease, 7.0)
            else:
                r = q.purge()
            out.append((kind, names.norm(r)))
        except (leaseq.LeaseLost, leaseq.Empty, leaseq.KeyInFlight) as e:
            out.append((op[0], type(e).__name__))
    # A keyless message's key is its id: rename those (the script's keys are "k<n>").
    ready = sorted(k if k[0] == "k" else names(k) for k in q.keys("ready"))
    leased = sorted(k if k[0] == "k" else names(k) for k in q.keys("leased"))
    out.append(("end", ready, leased, q.qsize(), names.norm(q.dead_letters())))
    return out


def _get_plain(q: Any) -> Lease:
    # get() with no option is the fast path's case; an empty queue must not block.
    if q.qsize() == 0:
        raise leaseq.Empty("nothing")
    lease: Lease = q.get()
    return lease


@pytest.mark.parametrize("seed", range(12))
def test_the_fast_path_and_the_general_path_agree_on_random_operations(seed: int) -> None:
    ops = _script(seed, 400)
    results = []
    # The faces' fast path; the methods (the store's put has its own inlined
    # insert); the methods with every put through put_many (the general insert).
    for fast, many in ((True, False), (False, False), (False, True)):
        clock = FakeClock()
        q = leaseq.Queue("memory://", clock=clock, max_attempts=3)
        assert ("put" in vars(q)) is True
        if not fast:
            _general(q)
        results.append(_replay(q, clock, ops, many))
        q.close()
    assert results[0] == results[1] == results[2]


def test_the_fast_path_takes_the_plain_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, the comparison above could pass with the fast path never taken."""
    slow: list[str] = []
    for name in FAST:
        method = getattr(leaseq.Queue, name)

        def spy(*a: Any, _m: Any = method, _n: str = name, **kw: Any) -> Any:
            slow.append(_n)
            return _m(*a, **kw)

        monkeypatch.setattr(leaseq.Queue, name, spy)
    q = leaseq.Queue("memory://")
    for i in range(10):
        q.put(i)
        q.ack(q.get())
    q.put("x", key="k", priority=3)
    q.ack(q.get())
    assert slow == []
    q.put("y", key="k")  # a new key: fast
    q.get(lease_timeout=5.0, owner="w", timeout=1.0, block=True)  # a Worker's options: fast
    assert slow == []
    q.put("z", key="k")  # the key exists: its policy is the general path's
    q.put("w", delay=1.0)  # an option the fast path leaves to the method
    with pytest.raises(leaseq.Empty):
        q.get(block=False)  # nothing claimable now: the method decides
    assert slow == ["put", "put", "get"]
    with pytest.raises(ValueError):
        q.get(lease_timeout=-1.0)  # checked as the method checks it
    q.close()


def test_closing_removes_the_fast_path_and_a_bound_one_raises_closed() -> None:
    q = leaseq.Queue("memory://")
    put, get = q.put, q.get
    q.close()
    assert not {"put", "get", "ack"} & set(vars(q))
    for call in (lambda: put(1), get, lambda: q.put(1)):
        with pytest.raises(leaseq.Closed):
            call()


def test_a_subclass_that_overrides_a_method_keeps_it() -> None:
    class Counting(leaseq.Queue):
        puts = 0

        def put(self, value: Any, **kw: Any) -> Message:
            Counting.puts += 1
            return super().put(value, **kw)

    q = Counting("memory://")
    q.put(1)
    assert Counting.puts == 1 and "put" not in vars(q)
    q.close()


def test_the_fast_path_shows_the_methods_signature_and_doc() -> None:
    q = leaseq.Queue("memory://")
    assert inspect.signature(q.put) == inspect.signature(leaseq.Queue("memory://").put)
    assert "key" in inspect.signature(q.put).parameters
    assert q.get.__doc__ == leaseq.Queue.get.__doc__
    q.close()


def test_other_stores_have_no_fast_path(tmp_path: Any) -> None:
    q = leaseq.Queue(f"sqlite:///{tmp_path}/q.db")
    assert "put" not in vars(q)
    q.close()


def test_the_async_face_fast_path_agrees_and_falls_back() -> None:
    async def main() -> None:
        clock = FakeClock()
        q = leaseq.AsyncQueue("memory://", clock=clock, lease_timeout=5.0)
        assert inspect.iscoroutinefunction(q.put)
        m = await q.put("a")
        lease = await q.get()
        assert (lease.message.id, lease.value, lease.attempt) == (m.id, "a", 1)
        await q.ack(lease)
        with pytest.raises(leaseq.LeaseLost):
            await q.ack(lease)  # the fast path declines, the method raises
        await q.put("b", key="k")
        await q.put("c", key="k")  # an update: the general path
        lease = await q.get(lease_timeout=1.0)
        assert lease.value == "c"
        clock.advance(2.0)
        with pytest.raises(leaseq.LeaseLost):
            await q.ack(lease)  # expired
        assert (await q.get()).attempt == 2  # expired to the head, counted
        await q.close()

    asyncio.run(main())
