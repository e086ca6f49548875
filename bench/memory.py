"""The in-memory benchmark of issue 2: ``python -m bench memory [--rounds N] [--quick]``.

Six scenarios, each with its contenders run side by side in this one process,
interleaved round by round (medians reported):

1. put+get+ack, one task: ``AsyncQueue("memory://")`` vs ``asyncio.Queue``
   put+get vs ``leasedkeyq`` put+get+ack.
2. the same, sync: ``Queue("memory://")`` vs ``queue.Queue`` put+get.
   Both also run a *floor* (``Floor``): not a queue, the least a fenced
   put+get+ack can cost in pure Python, so a goal above it is visibly out of
   reach of pure-Python code whatever the design.
3. 100 consumer tasks vs 1 (a producer fills, consumers get+ack).
4. 1,000 tasks blocked in ``take(own key)`` vs 1 task doing as many cycles.
5. each operation's cost with 100,000 queued messages vs 1,000.
6. memory retained after 100,000 put+get+ack cycles (tracemalloc).

It ends with a summary of every acceptance target: measured figure and
PASS/FAIL. The exit code is 0 either way: this is a report, not a gate.
Scenarios 1, 2 and 5 are timed in CPU time, 3 and 4 in wall time (see ``cpu``).
Figures are only meaningful on a quiet machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import heapq
import os
import queue
import random
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import leaseq
from leaseq import Lease, Message, State

from .common import Row, Table, interleave, print_grid, print_table

try:  # a peer, installed by `make bench` (bench/requirements.txt)
    from leasedkeyq import LeasedKeyQueue
except ImportError:  # pragma: no cover - depends on the environment
    LeasedKeyQueue = None

# Scenarios 1, 2 and 5 only compute (nothing ever waits), so they are timed in CPU
# time of this process: other processes on a shared machine disturb them far less.
# Scenarios 3 and 4 wait for wake-ups, so they use wall time: a late or missed
# wake-up costs idle time, which CPU time would hide.
cpu, cpu_ns = time.process_time, time.process_time_ns
WARM_UP = 100  # untimed cycles before each timed sample (every contender alike)
LKQ_MISSING = "leasedkeyq not installed (pip install -r bench/requirements.txt)"


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does per sample."""

    cycles: int  # scenarios 1 and 2: cycles per sample
    consumers_msgs: int  # scenario 3: messages per sample
    take_keys: int  # scenario 4: tasks (keys) on the many side
    take_rounds: int  # scenario 4: cycles per key per sample
    small: int  # scenario 5: queued messages, small queue
    large: int  # scenario 5: queued messages, large queue
    batch: int  # scenario 5: operations timed back to back
    batches: int  # scenario 5: batches per sample (rounds: OP_ROUNDS x --rounds)
    mem_cycles: int  # scenario 6


FULL = Sizes(20_000, 20_000, 1_000, 10, 1_000, 100_000, 100, 5, 100_000)
QUICK = Sizes(1_000, 1_000, 100, 2, 100, 5_000, 50, 2, 2_000)


@dataclass(frozen=True)
class Verdict:
    """One acceptance target and what this run measured."""

    target: str
    goal: str
    measured: str
    ok: bool | None  # None: could not be measured


def run(args: argparse.Namespace) -> None:
    """Run every scenario, print its tables, then the summary of targets."""
    sizes = QUICK if args.quick else FULL
    rounds = max(1, args.rounds)
    print(f"(rounds={rounds}, {'quick' if args.quick else 'full'} sizes: {sizes})")
    print_load("start")
    verdicts: list[Verdict] = []
    for scenario in (
        bench_async_cycle,
        bench_sync_cycle,
        bench_consumers,
        bench_take_waiters,
        bench_op_costs,
        bench_memory,
    ):
        gc.collect()
        verdicts += scenario(sizes, rounds)
    print_summary(verdicts)
    print_load("end")


def print_load(when: str) -> None:
    """The figures only mean something on a quiet machine: say how busy it was."""
    if hasattr(os, "getloadavg"):
        one, five, _ = os.getloadavg()
        print(f"(load average at {when}: {one:.2f} 1-min, {five:.2f} 5-min, {os.cpu_count()} cpus)")


# -- helpers -----------------------------------------------------------------------------


# Verdicts are decided on the exact figure; three decimals keep the printed one honest.
def at_least(target: str, goal: float, measured: float | None) -> Verdict:
    if measured is None:
        return Verdict(target, f">= {goal}x", "n/a", None)
    return Verdict(target, f">= {goal}x", f"{measured:.3f}x", measured >= goal)


def at_most(target: str, goal: float, measured: float) -> Verdict:
    return Verdict(target, f"<= {goal}x", f"{measured:.3f}x", measured <= goal)


def run_async(factory: Callable[[], Coroutine[Any, Any, float]]) -> Callable[[], float]:
    """A contender that runs one async sample in a fresh event loop."""
    return lambda: asyncio.run(factory())


def print_summary(verdicts: Sequence[Verdict]) -> None:
    rows = []
    for v in verdicts:
        status = "N/A" if v.ok is None else "PASS" if v.ok else "FAIL"
        rows.append((v.target, v.goal, v.measured, status))
    print_grid("Summary: acceptance targets of issue 2", ("target", "goal", "measured", ""), rows)
    failed = sum(v.ok is False for v in verdicts)
    missing = sum(v.ok is None for v in verdicts)
    print(f"\n{len(verdicts) - failed - missing} PASS, {failed} FAIL, {missing} N/A")


# -- 1. put+get+ack, one task, async -------------------------------------------------------


async def leaseq_async_cycle(n: int) -> float:
    async with leaseq.AsyncQueue("memory://") as q:
        put, get, ack = q.put, q.get, q.ack
        for i in range(WARM_UP):
            await put(i)
            await ack(await get())
        start = cpu()
        for i in range(n):
            await put(i)
            lease = await get()
            await ack(lease)
        return n / (cpu() - start)


async def leaseq_async_keyed_cycle(n: int) -> float:
    keys = [f"k{i}" for i in range(n)]  # built untimed, as for leasedkeyq
    async with leaseq.AsyncQueue("memory://") as q:
        put, get, ack = q.put, q.get, q.ack
        for i in range(WARM_UP):
            await put(i, key="warm")
            await ack(await get())
        start = cpu()
        for i, key in enumerate(keys):
            await put(i, key=key)
            lease = await get()
            await ack(lease)
        return n / (cpu() - start)


async def asyncio_queue_cycle(n: int) -> float:
    q: asyncio.Queue[int] = asyncio.Queue()
    put, get = q.put, q.get
    for i in range(WARM_UP):
        await put(i)
        await get()
    start = cpu()
    for i in range(n):
        await put(i)
        await get()
    return n / (cpu() - start)


async def leasedkeyq_cycle(n: int) -> float:
    assert LeasedKeyQueue is not None
    keys = [f"k{i}" for i in range(n)]  # leasedkeyq needs a key; not timed
    async with LeasedKeyQueue[str, int]() as q:
        put, get, ack = q.put, q.get, q.ack
        for i in range(WARM_UP):
            await put("warm", i)
            await ack((await get())[2])
        start = cpu()
        for i, key in enumerate(keys):
            await put(key, i)
            _key, _value, lease = await get()
            await ack(lease)
        return n / (cpu() - start)


_new = tuple.__new__  # the cheapest way to build a NamedTuple, as leaseq's stores do
_READY, _LEASED = State.READY, State.LEASED


class Floor:
    """Not a queue: the least leaseq's put+get+ack can cost in pure Python. What the
    API and the contract cannot skip: a lock (thread-safe), a clock read per call,
    an expiry timer per lease, the ``Message`` put returns, the ``Lease`` (with its
    ``Message``) get returns, a token checked by ack. What it skips: priorities,
    keys, delays, waiting, history, stats. A goal above this row is out of reach of
    pure-Python code with this API, whatever the design."""

    def __init__(self) -> None:
        self.live: dict[str, list[Any]] = {}
        self.line: collections.deque[list[Any]] = collections.deque()
        self.timers: list[tuple[float, int, list[Any]]] = []
        self.lock = threading.Lock()
        self.ids = 0

    def put_now(self, value: Any) -> Message:
        now = time.time()
        with self.lock:
            self.ids += 1
            mid = str(self.ids)
            rec = [mid, value, 0, None]
            self.live[mid] = rec
            self.line.append(rec)
        return _new(Message, (mid, mid, value, 0, _READY, 0, now, now, None, None, None, (), None))

    def get_now(self) -> Lease:
        now = time.time()
        with self.lock:
            rec = self.line.popleft()
            self.ids += 1
            rec[2] += 1
            rec[3] = token = str(self.ids)
            exp = now + 30.0
            heapq.heappush(self.timers, (exp, self.ids, rec))
        mid, value, attempt = rec[0], rec[1], rec[2]
        msg = _new(
            Message, (mid, mid, value, 0, _LEASED, attempt, now, now, exp, None, None, (), None)
        )
        return _new(Lease, (mid, value, token, attempt, exp, msg))

    def ack_now(self, lease: Lease) -> None:
        now = time.time()
        with self.lock:
            rec = self.live.get(lease.message.id)
            if rec is None or rec[3] != lease.token or now >= lease.expires_at:
                raise LookupError("lease lost")
            self.timers.pop()  # its timer: the one cycling task's last entry
            del self.live[rec[0]]

    async def put(self, value: Any) -> Message:
        return self.put_now(value)

    async def get(self) -> Lease:
        return self.get_now()

    async def ack(self, lease: Lease) -> None:
        self.ack_now(lease)


async def floor_async_cycle(n: int) -> float:
    q = Floor()
    put, get, ack = q.put, q.get, q.ack
    start = cpu()
    for i in range(n):
        await put(i)
        lease = await get()
        await ack(lease)
    return n / (cpu() - start)


def floor_sync_cycle(n: int) -> float:
    q = Floor()
    put, get, ack = q.put_now, q.get_now, q.ack_now
    start = cpu()
    for i in range(n):
        put(i)
        lease = get()
        ack(lease)
    return n / (cpu() - start)


def bench_async_cycle(sizes: Sizes, rounds: int) -> list[Verdict]:
    n = sizes.cycles
    ours, aq, lkq = (
        "leaseq AsyncQueue put+get+ack",
        "asyncio.Queue put+get",
        "leasedkeyq put+get+ack",
    )
    contenders = {
        ours: run_async(lambda: leaseq_async_cycle(n)),
        "leaseq AsyncQueue (key=) put+get+ack": run_async(lambda: leaseq_async_keyed_cycle(n)),
        aq: run_async(lambda: asyncio_queue_cycle(n)),
        FLOOR: run_async(lambda: floor_async_cycle(n)),
    }
    if LeasedKeyQueue is not None:
        contenders[lkq] = run_async(lambda: leasedkeyq_cycle(n))
    medians = interleave(contenders, rounds)
    rows = [
        Row(name, value, "cycles/s", f"{value / medians[aq]:.2f}x asyncio.Queue")
        for name, value in medians.items()
    ]
    baseline = lkq if lkq in medians else aq
    print_table(Table(f"1. one task, async, {n:,} cycles per sample", baseline, rows))
    if lkq not in medians:
        print(f"(no leasedkeyq row: {LKQ_MISSING})")
    print_floor(medians, {"leasedkeyq": lkq, "asyncio.Queue": aq})
    return [
        at_least("AsyncQueue cycle / leasedkeyq", 7.0, ratio(medians, ours, lkq)),
        at_least("AsyncQueue cycle / asyncio.Queue put+get", 0.4, ratio(medians, ours, aq)),
    ]


FLOOR = "floor (not a queue, see Floor)"


def print_floor(medians: dict[str, float], others: dict[str, str]) -> None:
    """Say what the pure-Python floor reaches against the goals' baselines."""
    parts = [
        f"{medians[FLOOR] / medians[row]:.2f}x {label}"
        for label, row in others.items()
        if medians.get(row)
    ]
    print(f"(the floor reaches {', '.join(parts)}: goals above that need compiled code)")


def ratio(medians: dict[str, float], name: str, baseline: str) -> float | None:
    """``name`` over ``baseline``; None when the baseline did not run."""
    base = medians.get(baseline)
    return medians[name] / base if base else None


# -- 2. put+get+ack, sync ---------------------------------------------------------------


def leaseq_sync_cycle(n: int) -> float:
    with leaseq.Queue("memory://") as q:
        put, get, ack = q.put, q.get, q.ack
        for i in range(WARM_UP):
            put(i)
            ack(get())
        start = cpu()
        for i in range(n):
            put(i)
            lease = get()
            ack(lease)
        return n / (cpu() - start)


def stdlib_queue_cycle(n: int) -> float:
    q: queue.Queue[int] = queue.Queue()
    put, get = q.put, q.get
    for i in range(WARM_UP):
        put(i)
        get()
    start = cpu()
    for i in range(n):
        put(i)
        get()
    return n / (cpu() - start)


def bench_sync_cycle(sizes: Sizes, rounds: int) -> list[Verdict]:
    n = sizes.cycles
    medians = interleave(
        {
            "leaseq Queue put+get+ack": lambda: leaseq_sync_cycle(n),
            "queue.Queue put+get": lambda: stdlib_queue_cycle(n),
            FLOOR: lambda: floor_sync_cycle(n),
        },
        rounds,
    )
    rows = [Row(name, value, "cycles/s") for name, value in medians.items()]
    print_table(Table(f"2. sync, one thread, {n:,} cycles per sample", "queue.Queue put+get", rows))
    print_floor(medians, {"queue.Queue": "queue.Queue put+get"})
    ratio = medians["leaseq Queue put+get+ack"] / medians["queue.Queue put+get"]
    return [at_least("Queue cycle / queue.Queue put+get", 0.4, ratio)]


# -- 3. many consumer tasks ------------------------------------------------------------


async def consumers_sample(n_consumers: int, n_msgs: int, chunk: int = 100) -> float:
    """Consumers block in get(); a producer puts ``n_msgs`` (yielding every ``chunk``);
    each consumer does get, one await (its "work"), ack. Returns messages/s."""
    async with leaseq.AsyncQueue("memory://") as q:
        done = 0
        finished = asyncio.Event()

        async def consume() -> None:
            nonlocal done
            while True:
                lease = await q.get()
                await asyncio.sleep(0)  # the handler's own await: lets others run
                await q.ack(lease)
                done += 1
                if done == n_msgs:
                    finished.set()

        tasks = [asyncio.create_task(consume()) for _ in range(n_consumers)]
        await asyncio.sleep(0)  # every consumer is now blocked in get()
        start = time.perf_counter()
        for i in range(n_msgs):
            await q.put(i)
            if i % chunk == chunk - 1:
                await asyncio.sleep(0)
        await finished.wait()
        elapsed = time.perf_counter() - start
        await cancel_all(tasks)
        return n_msgs / elapsed


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def bench_consumers(sizes: Sizes, rounds: int) -> list[Verdict]:
    n = sizes.consumers_msgs
    many = 100
    medians = interleave(
        {
            "1 consumer": run_async(lambda: consumers_sample(1, n)),
            f"{many} consumers": run_async(lambda: consumers_sample(many, n)),
        },
        rounds,
    )
    rows = [Row(name, value, "msgs/s") for name, value in medians.items()]
    title = f"3. consumer tasks (each: get, one await, ack), {n:,} messages per sample"
    print_table(Table(title, "1 consumer", rows))
    ratio = medians[f"{many} consumers"] / medians["1 consumer"]
    return [at_least(f"{many} consumer tasks / 1 (throughput)", 0.9, ratio)]


# -- 4. take(own key) waiters -------------------------------------------------------------


class KeyedFutures:
    """Not leaseq: the least a keyed hand-off can cost in asyncio (one asyncio.Queue
    per key, no lease). Run through the same scenario, its ratio shows what 1,000
    tasks cost the event loop itself."""

    def __init__(self) -> None:
        self.slots: dict[str, asyncio.Queue[int]] = {}

    def _slot(self, key: str) -> asyncio.Queue[int]:
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = asyncio.Queue()
        return slot

    async def put(self, value: int, *, key: str) -> None:
        self._slot(key).put_nowait(value)

    async def take(self, key: str) -> int:
        return await self._slot(key).get()

    async def ack(self, _lease: object) -> None:
        pass


async def take_sample(q: Any, many: bool, orders: list[list[str]]) -> float:
    """Cycles of put(key) -> the task blocked in take(key) gets it -> ack.

    ``many``: one task per key, each looping take/ack over its own key; otherwise
    one task taking the keys one after another in the producer's order. The
    producer puts every key once per round (shuffled), yielding after each put,
    and waits for the round to be consumed before the next (so a key is never
    put twice before it is taken). Timed from when every task is blocked."""
    n_keys = len(orders[0])
    done = 0
    target = n_keys
    round_done = asyncio.Event()

    def tick() -> None:
        nonlocal done
        done += 1
        if done == target:
            round_done.set()

    async def own_key(key: str) -> None:
        for _ in orders:
            lease = await q.take(key)
            await q.ack(lease)
            tick()

    async def in_order() -> None:
        for order in orders:
            for key in order:
                lease = await q.take(key)
                await q.ack(lease)
                tick()

    if many:
        tasks = [asyncio.create_task(own_key(key)) for key in orders[0]]
    else:
        tasks = [asyncio.create_task(in_order())]
    await asyncio.sleep(0)  # every task is now blocked in take()
    start = time.perf_counter()
    for r, order in enumerate(orders):
        target = (r + 1) * n_keys
        round_done.clear()
        for key in order:
            await q.put(r, key=key)
            await asyncio.sleep(0)
        await round_done.wait()
    elapsed = time.perf_counter() - start
    await asyncio.gather(*tasks)
    return done / elapsed


async def leaseq_take_sample(many: bool, orders: list[list[str]]) -> float:
    async with leaseq.AsyncQueue("memory://") as q:
        return await take_sample(q, many, orders)


async def reference_take_sample(many: bool, orders: list[list[str]]) -> float:
    return await take_sample(KeyedFutures(), many, orders)


def bench_take_waiters(sizes: Sizes, rounds: int) -> list[Verdict]:
    rng = random.Random(2)
    keys = [f"key-{i}" for i in range(sizes.take_keys)]
    orders = [rng.sample(keys, len(keys)) for _ in range(sizes.take_rounds)]
    n = len(keys)
    one, many = "leaseq: 1 task", f"leaseq: {n:,} tasks"
    ref_one, ref_many = "reference: 1 task", f"reference: {n:,} tasks"
    medians = interleave(
        {
            one: run_async(lambda: leaseq_take_sample(False, orders)),
            many: run_async(lambda: leaseq_take_sample(True, orders)),
            ref_one: run_async(lambda: reference_take_sample(False, orders)),
            ref_many: run_async(lambda: reference_take_sample(True, orders)),
        },
        rounds,
    )
    title = f"4. tasks blocked in take(own key), {n * len(orders):,} cycles per sample"
    print_table(Table(title, one, [Row(name, medians[name], "cycles/s") for name in (one, many)]))
    rows = [Row(name, medians[name], "cycles/s") for name in (ref_one, ref_many)]
    print_table(Table(f"4. {TAKE_REF}, same scenario", ref_one, rows))
    return [
        at_least(f"{n:,} take(own key) tasks / 1 (throughput)", 0.9, medians[many] / medians[one])
    ]


TAKE_REF = "reference (not leaseq): asyncio.Queue per key"


# -- 5. cost of each operation vs queue length ----------------------------------------------

PRIORITIES = (-1, 0, 1, 5)  # a mix, so every priority level's structures are exercised
OP_ROUNDS = 4
DICT_REF = "(reference, not leaseq: dict get+del+del)"


class OpBench:
    """One sync ``Queue`` holding ``size`` READY messages, restored after every batch.

    Each ``measure_*`` times ``batch`` operations back to back and returns ns per
    operation; the work that restores the queue to ``size`` ready messages (acks,
    re-puts, releases) is done outside the timed section."""

    def __init__(self, size: int, batch: int, rng: random.Random) -> None:
        self.q = leaseq.Queue("memory://")
        self.rng = rng
        self.batch = batch
        self.keys = [f"k{i}" for i in range(size)]
        self.prio = {k: rng.choice(PRIORITIES) for k in self.keys}
        for k in self.keys:
            self.q.put(k, key=k, priority=self.prio[k])
        self.fresh = [f"new{i}" for i in range(batch)]

    def close(self) -> None:
        self.q.close()

    def _refill(self, leases: list[leaseq.Lease]) -> None:
        for lease in leases:
            self.q.ack(lease)
            self.q.put(lease.key, key=lease.key, priority=self.prio[lease.key])

    def _claim(self) -> list[leaseq.Lease]:
        return [self.q.get(block=False) for _ in range(self.batch)]

    def measure_put(self) -> int:
        put, rng = self.q.put, self.rng
        prios = [rng.choice(PRIORITIES) for _ in self.fresh]
        start = cpu_ns()
        for key, p in zip(self.fresh, prios, strict=True):
            put(key, key=key, priority=p)
        elapsed = cpu_ns() - start
        for key in self.fresh:
            self.q.ack(self.q.take(key, block=False))
        return elapsed

    def measure_get(self) -> int:
        get = self.q.get
        start = cpu_ns()
        leases = [get(block=False) for _ in range(self.batch)]
        elapsed = cpu_ns() - start
        self._refill(leases)
        return elapsed

    def measure_ack(self) -> int:
        leases, ack = self._claim(), self.q.ack
        start = cpu_ns()
        for lease in leases:
            ack(lease)
        elapsed = cpu_ns() - start
        for lease in leases:
            self.q.put(lease.key, key=lease.key, priority=self.prio[lease.key])
        return elapsed

    def measure_take(self) -> int:
        take, keys = self.q.take, self.rng.sample(self.keys, self.batch)
        start = cpu_ns()
        leases = [take(k, block=False) for k in keys]
        elapsed = cpu_ns() - start
        self._refill(leases)
        return elapsed

    def _renew_all(self, keys: list[str]) -> None:
        """Replace these (ready) messages by fresh ones: no attempts, no history, so
        every timed operation meets messages in the same condition at any size."""
        for key in keys:
            self.q.ack(self.q.take(key, block=False))
            self.q.put(key, key=key, priority=self.prio[key])

    def _measure_release(self, front: bool) -> int:
        leases, release = self._claim(), self.q.release
        start = cpu_ns()
        for lease in leases:
            release(lease, front=front)
        elapsed = cpu_ns() - start
        self._renew_all([lease.key for lease in leases])
        return elapsed

    def measure_release_front(self) -> int:
        return self._measure_release(True)

    def measure_release_back(self) -> int:
        return self._measure_release(False)

    def measure_extend(self) -> int:
        leases, extend = self._claim(), self.q.extend
        start = cpu_ns()
        for lease in leases:
            extend(lease, 60.0)
        elapsed = cpu_ns() - start
        self._refill(leases)  # an extended lease keeps its token: ack works
        return elapsed

    def measure_peek(self) -> int:
        peek, keys = self.q.peek, self.rng.sample(self.keys, self.batch)
        start = cpu_ns()
        for k in keys:
            peek(k)
        return cpu_ns() - start


OPS: dict[str, Callable[[OpBench], int]] = {
    "put": OpBench.measure_put,
    "get": OpBench.measure_get,
    "ack": OpBench.measure_ack,
    "take(key)": OpBench.measure_take,
    "release front": OpBench.measure_release_front,
    "release back": OpBench.measure_release_back,
    "extend": OpBench.measure_extend,
    "peek": OpBench.measure_peek,
}


def dict_reference(size: int, batch: int, rng: random.Random) -> Callable[[OpBench], int]:
    """Not leaseq: three plain dict operations (get, del, del) on random keys of two
    ``size``-entry dicts. Its ratio shows what the memory hierarchy alone costs at
    the larger size on this machine, the floor any O(1) structure pays."""
    by_id = {f"m{i}": i for i in range(size)}
    by_key = {f"k{i}": i for i in range(size)}

    def measure(_ob: OpBench) -> int:
        picked = rng.sample(range(size), batch)
        ids, keys = [f"m{i}" for i in picked], [f"k{i}" for i in picked]
        start = cpu_ns()
        for mid, key in zip(ids, keys, strict=True):
            by_id.get(mid)
            del by_key[key]
            del by_id[mid]
        elapsed = cpu_ns() - start
        for i, mid, key in zip(picked, ids, keys, strict=True):
            by_id[mid] = by_key[key] = i
        return elapsed

    return measure


def op_sampler(ob: OpBench, op: Callable[[OpBench], int], batches: int) -> Callable[[], float]:
    """A contender: ns per operation of ``op`` on ``ob``, over ``batches`` batches."""

    def sample() -> float:
        return sum(op(ob) for _ in range(batches)) / (batches * ob.batch)

    return sample


def bench_op_costs(sizes: Sizes, rounds: int) -> list[Verdict]:
    rng = random.Random(5)
    small, large = sizes.small, sizes.large
    t0 = time.perf_counter()
    benches = {small: OpBench(small, sizes.batch, rng), large: OpBench(large, sizes.batch, rng)}
    print(
        f"\n(built queues of {small:,} and {large:,} messages in {time.perf_counter() - t0:.1f}s)"
    )
    contenders: dict[str, Callable[[], float]] = {}
    for name, op in OPS.items():
        for size, ob in benches.items():
            contenders[f"{name}@{size}"] = op_sampler(ob, op, sizes.batches)
    for size, ob in benches.items():
        ref = dict_reference(size, sizes.batch, rng)
        contenders[f"{DICT_REF}@{size}"] = op_sampler(ob, ref, sizes.batches)
    # Short samples, many rounds: each size meets the same machine conditions.
    medians = interleave(contenders, rounds * OP_ROUNDS)
    for ob in benches.values():
        ob.close()
    rows, verdicts = [], []
    for name in OPS:
        lo, hi = medians[f"{name}@{small}"], medians[f"{name}@{large}"]
        rows.append((name, f"{lo:,.0f}", f"{hi:,.0f}", f"{hi / lo:.2f}x"))
        verdicts.append(at_most(f"{name} cost @{large:,} / @{small:,}", 1.5, hi / lo))
    lo, hi = medians[f"{DICT_REF}@{small}"], medians[f"{DICT_REF}@{large}"]
    rows.append((DICT_REF, f"{lo:,.0f}", f"{hi:,.0f}", f"{hi / lo:.2f}x"))
    header = ("operation (sync Queue)", f"ns/op @{small:,}", f"ns/op @{large:,}", "ratio")
    title = (
        f"5. cost per operation vs queued messages (median of {rounds * OP_ROUNDS} samples "
        f"of {sizes.batches}x{sizes.batch} ops)"
    )
    print_grid(title, header, rows)
    return verdicts


# -- 6. memory retained --------------------------------------------------------------------


def traced_growth(cycles: Callable[[int], None], n: int) -> int:
    """Bytes still allocated after ``cycles(n)`` that were allocated during it."""
    cycles(1_000)  # warm-up: lazily built structures are not a leak
    gc.collect()
    tracemalloc.start()
    try:
        cycles(n)
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


async def async_traced_growth(cycles: Callable[[int], Awaitable[None]], n: int) -> int:
    """``traced_growth`` for a coroutine function."""
    await cycles(1_000)
    gc.collect()
    tracemalloc.start()
    try:
        await cycles(n)
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def sync_retained(n: int) -> int:
    with leaseq.Queue("memory://") as q:

        def cycles(k: int) -> None:
            for i in range(k):
                q.put(i)
                q.ack(q.get())

        return traced_growth(cycles, n)


async def async_retained(n: int) -> int:
    async with leaseq.AsyncQueue("memory://") as q:

        async def cycles(k: int) -> None:
            for i in range(k):
                await q.put(i)
                await q.ack(await q.get())

        return await async_traced_growth(cycles, n)


async def leasedkeyq_retained(n: int) -> int:
    assert LeasedKeyQueue is not None
    async with LeasedKeyQueue[str, int]() as q:

        async def cycles(k: int) -> None:
            for i in range(k):
                await q.put(f"k{i}", i)
                _key, _value, lease = await q.get()
                await q.ack(lease)

        return await async_traced_growth(cycles, n)


def bench_memory(sizes: Sizes, rounds: int) -> list[Verdict]:
    """Allocation counts do not depend on machine noise: one run each, no rounds.
    Without a key, every put makes a new id and key, so per-key residue shows too."""
    n = sizes.mem_cycles
    limit = 1_000_000
    figures: dict[str, int | None] = {
        "leaseq Queue": sync_retained(n),
        "leaseq AsyncQueue": asyncio.run(async_retained(n)),
        "leasedkeyq (for comparison)": (
            asyncio.run(leasedkeyq_retained(n)) if LeasedKeyQueue is not None else None
        ),
    }
    rows = [
        (name, "n/a" if b is None else f"{b:,}", "" if b is None else f"{b / n:.1f}")
        for name, b in figures.items()
    ]
    header = ("contender", "bytes retained", "bytes/cycle")
    print_grid(f"6. memory retained after {n:,} put+get+ack cycles (tracemalloc)", header, rows)
    verdicts = []
    for name in ("leaseq Queue", "leaseq AsyncQueue"):
        b = figures[name]
        assert b is not None
        verdicts.append(
            Verdict(f"{name}: retained after {n:,} cycles", "< 1 MB", f"{b:,} B", b < limit)
        )
    return verdicts
