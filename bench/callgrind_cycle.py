"""Instructions per put+get(+ack) cycle, counted by valgrind: stable on a loaded machine.

Wall-clock timings of the one-task cycles (``python -m bench memory``) vary 2x
between runs when other work shares the CPU; instruction counts do not, and
their ratios approximate the ratios of time for these pure-Python loops.

Run (from the repository root, valgrind installed)::

    .venv/bin/python bench/callgrind_cycle.py            # the table, all contenders
    .venv/bin/python bench/callgrind_cycle.py -n 20000   # cycles per measurement
    .venv/bin/python bench/callgrind_cycle.py --one NAME N   # N cycles, no valgrind

Each contender runs twice under ``valgrind --tool=callgrind`` (N/10 and N
cycles after the same warm-up); the difference of the two totals divided by
the difference of the cycle counts is the cost of one cycle, free of start-up
and import costs (start-up objects are frozen out of the garbage collector, so
a full collection of them cannot land in one run only). Ratios are "times
faster than" (instructions of the other over ours), the form of issue 2's targets.
The *floor* rows (``bench.memory.Floor``, not a queue: the least this API can
cost in pure Python) show which targets no pure-Python design can reach.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import queue
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

WARM_UP = 100
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


async def _async_cycles(q: Any, n: int) -> None:
    """``n`` (plus warm-up) put+get+ack cycles through ``q``'s awaitable methods."""
    put, get, ack = q.put, q.get, q.ack
    for i in range(WARM_UP + n):
        await put(i)
        lease = await get()
        await ack(lease)


def _sync_cycles(put: Any, get: Any, ack: Any, n: int) -> None:
    for i in range(WARM_UP + n):
        put(i)
        lease = get()
        ack(lease)


def async_leaseq(n: int) -> None:
    import leaseq

    async def main() -> None:
        async with leaseq.AsyncQueue("memory://") as q:
            await _async_cycles(q, n)

    asyncio.run(main())


def sync_leaseq(n: int) -> None:
    import leaseq

    with leaseq.Queue("memory://") as q:
        _sync_cycles(q.put, q.get, q.ack, n)


def asyncio_queue(n: int) -> None:
    async def main() -> None:
        q: asyncio.Queue[int] = asyncio.Queue()
        put, get = q.put, q.get
        for i in range(WARM_UP + n):
            await put(i)
            await get()

    asyncio.run(main())


def stdlib_queue(n: int) -> None:
    q: queue.Queue[int] = queue.Queue()
    put, get = q.put, q.get
    for i in range(WARM_UP + n):
        put(i)
        get()


def leasedkeyq(n: int) -> None:
    from leasedkeyq import LeasedKeyQueue

    keys = [f"k{i}" for i in range(WARM_UP + n)]  # it needs a key; the same for every n

    async def main() -> None:
        async with LeasedKeyQueue[str, int]() as q:
            put, get, ack = q.put, q.get, q.ack
            for i, key in enumerate(keys):
                await put(key, i)
                _key, _value, lease = await get()
                await ack(lease)

    asyncio.run(main())


def floor_async(n: int) -> None:
    from bench.memory import Floor

    asyncio.run(_async_cycles(Floor(), n))


def floor_sync(n: int) -> None:
    from bench.memory import Floor

    q = Floor()
    _sync_cycles(q.put_now, q.get_now, q.ack_now, n)


CONTENDERS: dict[str, Callable[[int], None]] = {
    "AsyncQueue put+get+ack": async_leaseq,
    "asyncio.Queue put+get": asyncio_queue,
    "leasedkeyq put+get+ack": leasedkeyq,
    "Queue put+get+ack": sync_leaseq,
    "queue.Queue put+get": stdlib_queue,
    # Not queues: the least this API costs in pure Python (bench.memory.Floor).
    "floor, async": floor_async,
    "floor, sync": floor_sync,
}


def instructions(name: str, n: int) -> int:
    """Total instructions (Ir) of one run of ``name`` with ``n`` cycles."""
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--one",
        name,
        str(n),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr}")
    return int(match.group(1))


def per_cycle(name: str, n: int) -> float:
    # One plain run first writes any stale .pyc, so neither measured run compiles.
    subprocess.run([sys.executable, __file__, "--one", name, "1"], check=True)
    small = n // 10
    return (instructions(name, n) - instructions(name, small)) / (n - small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20000, help="cycles per measurement")
    parser.add_argument("--one", nargs=2, metavar=("NAME", "N"), help="run N cycles of NAME")
    args = parser.parse_args()
    if args.one:
        # Start-up objects are frozen out of the collector: otherwise a full
        # collection of them lands in one of the two runs and skews the difference.
        gc.collect()
        gc.freeze()
        CONTENDERS[args.one[0]](int(args.one[1]))
        return
    # Two cores: two valgrind runs at a time (instruction counts do not depend on load).
    with ThreadPoolExecutor(2) as pool:
        costs = dict(
            zip(CONTENDERS, pool.map(lambda c: per_cycle(c, args.n), CONTENDERS), strict=True)
        )
    print(f"instructions per cycle (valgrind callgrind, {args.n:,} cycles)")
    rows = [
        ("AsyncQueue put+get+ack", "leasedkeyq put+get+ack", 7.0),
        ("AsyncQueue put+get+ack", "asyncio.Queue put+get", 0.4),
        ("Queue put+get+ack", "queue.Queue put+get", 0.4),
        ("floor, async", "leasedkeyq put+get+ack", 7.0),
        ("floor, async", "asyncio.Queue put+get", 0.4),
        ("floor, sync", "queue.Queue put+get", 0.4),
    ]
    for name, cost in costs.items():
        print(f"  {name:<26} {cost:>10,.0f} Ir")
    print("speed ratios (other's Ir / ours; target in brackets)")
    for ours, other, goal in rows:
        speed = costs[other] / costs[ours]
        verdict = "PASS" if speed >= goal else "FAIL"
        print(f"  {ours} vs {other:<24} {speed:5.2f}x  [>= {goal}x] {verdict}")


if __name__ == "__main__":
    main()
