"""Task runner: per-task overhead, cancel cost, memory in infinite mode.

``python -m bench runner [--rounds N] [--quick]``. The comparison with
osiiso 1.1.0 needs Python 3.13 (osiiso requires it)::

    python3.13 -m venv bench/.venv313
    bench/.venv313/bin/pip install osiiso==1.1.0 -e .
    bench/.venv313/bin/python -m bench runner

(or install osiiso alone and run with ``PYTHONPATH=$PWD/src:$PWD``; the
instruction counts below work the same way with ``bench/runner.py --instructions``).

Without osiiso installed its rows are left out (and said so).

* Overhead: CPU time per task for N tasks (submission included; process time,
  so other load on the machine counts less than in wall time) with no-op
  and ``sleep(0)`` bodies at concurrency 8 and 100, leaseq ``TaskRunner``
  against ``asyncio.TaskGroup`` + ``Semaphore``, ``asyncio.gather`` +
  ``Semaphore`` and osiiso's ``AsyncQueue``; contenders interleave round by
  round and each figure is the median. Ratio = TaskGroup's time / contender's
  time (above 1: faster than TaskGroup).
* Cancel: one queued task cancelled with 50,000 queued (leaseq: a keyed
  removal; osiiso rebuilds its heap).
* Memory: infinite mode, 100,000 tasks fed in batches; traced memory held
  after each stage (leaseq keeps the newest 10,000 results; osiiso keeps all).

Timings on a shared 2-core machine vary a lot between runs; machine
instructions do not. ``python bench/runner.py --instructions`` counts them
with valgrind (callgrind): each contender runs N1 and N2 no-op tasks in two
processes and the difference of the totals over N2 - N1 is its cost per task,
free of start-up and import costs. Ratios of instructions approximate ratios
of time for these pure-Python loops.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import Row, Table, interleave, print_table
from leaseq.runner import TaskRunner

try:  # a peer, measured only where it installs (Python 3.13)
    import osiiso  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - depends on the interpreter
    osiiso = None

Body = Callable[[], Awaitable[None]]


async def noop() -> None:
    return None


async def sleep0() -> None:
    await asyncio.sleep(0)


# -- contenders: each runs n bodies at concurrency c ------------------------------------
async def _taskgroup(body: Body, n: int, c: int) -> None:
    sem = asyncio.Semaphore(c)

    async def guarded() -> None:
        async with sem:
            await body()

    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(guarded())


async def _gather(body: Body, n: int, c: int) -> None:
    sem = asyncio.Semaphore(c)

    async def guarded() -> None:
        async with sem:
            await body()

    await asyncio.gather(*(guarded() for _ in range(n)))


async def _leaseq(body: Body, n: int, c: int) -> None:
    runner = TaskRunner(workers=c)
    for _ in range(n):
        runner.submit(body)
    summary = await runner.run()
    assert summary.succeeded == n


async def _osiiso(body: Body, n: int, c: int) -> None:
    q = osiiso.AsyncQueue(workers=c)
    for _ in range(n):
        q.submit(body)
    summary = await q.run()
    assert summary.succeeded == n


def _timed(scenario: Callable[[Body, int, int], Awaitable[None]], body: Body, n: int, c: int):  # type: ignore[no-untyped-def]
    def measure() -> float:
        gc.collect()
        start = time.process_time()
        asyncio.run(scenario(body, n, c))  # type: ignore[arg-type]
        return (time.process_time() - start) / n * 1e6

    return measure


def overhead(rounds: int, sizes: list[int]) -> list[Table]:
    tables = []
    for n in sizes:
        for body_name, body in (("no-op", noop), ("sleep(0)", sleep0)):
            for c in (8, 100):
                contenders = {
                    "asyncio.TaskGroup+Semaphore": _timed(_taskgroup, body, n, c),
                    "asyncio.gather+Semaphore": _timed(_gather, body, n, c),
                    "leaseq.TaskRunner": _timed(_leaseq, body, n, c),
                }
                if osiiso is not None:
                    contenders["osiiso 1.1.0 AsyncQueue"] = _timed(_osiiso, body, n, c)
                medians = interleave(contenders, rounds)
                table = Table(
                    f"{body_name} body, N={n:,}, concurrency {c}: CPU µs per task",
                    baseline="asyncio.TaskGroup+Semaphore",
                    higher_is_better=False,
                )
                for name, value in medians.items():
                    note = ""
                    if name == "leaseq.TaskRunner" and "osiiso 1.1.0 AsyncQueue" in medians:
                        note = (
                            f"{medians['osiiso 1.1.0 AsyncQueue'] / value:.2f}x faster than osiiso"
                        )
                    table.rows.append(Row(name, value, "µs/task", note))
                tables.append(table)
                print_table(table)
    return tables


# -- cancel --------------------------------------------------------------------------------
def cancel_cost(queued: int, samples: int) -> Table:
    table = Table(
        f"cancel one queued task with {queued:,} queued: µs per cancel",
        baseline="leaseq.TaskRunner",
        higher_is_better=False,
    )

    async def leaseq_cancel() -> float:
        runner = TaskRunner(workers=1)
        handles = [runner.submit(noop) for _ in range(queued)]
        step = max(1, queued // samples)
        times = []
        for h in handles[::step][:samples]:
            start = time.perf_counter()
            h.cancel()
            times.append(time.perf_counter() - start)
        assert all(h.cancelled() for h in handles[::step][:samples])
        await runner.shutdown(force=True)
        return statistics.median(times) * 1e6

    table.rows.append(Row("leaseq.TaskRunner", asyncio.run(leaseq_cancel()), "µs", "median"))
    if osiiso is not None:

        async def osiiso_cancel() -> float:
            q = osiiso.AsyncQueue(workers=1)
            handles = [q.submit(noop) for _ in range(queued)]
            times = []
            for h in handles[queued // 4 :: queued // 4][:3]:
                start = time.perf_counter()
                h.cancel()
                times.append(time.perf_counter() - start)
            await q.shutdown(force=True)
            return statistics.median(times) * 1e6

        table.rows.append(
            Row("osiiso 1.1.0 AsyncQueue", asyncio.run(osiiso_cancel()), "µs", "median of 3")
        )
    print_table(table)
    return table


# -- memory in infinite mode ---------------------------------------------------------------
async def _feed(queue: Any, total: int, batch: int, marks: set[int]) -> dict[int, float]:
    held: dict[int, float] = {}
    run = asyncio.create_task(queue.run())
    done = 0
    while done < total:
        for _ in range(batch):
            queue.submit(noop)
        done += batch
        await queue.join()
        if done in marks:
            gc.collect()
            held[done] = tracemalloc.get_traced_memory()[0] / 1024
    queue.cancel()
    await run
    return held


def memory(total: int) -> None:
    marks = {total // 5, total // 2, total}
    contenders: dict[str, Callable[[], Any]] = {
        "leaseq.TaskRunner": lambda: TaskRunner(mode="infinite", workers=8)
    }
    if osiiso is not None:
        contenders["osiiso 1.1.0 AsyncQueue"] = lambda: osiiso.AsyncQueue(
            mode="infinite", workers=8
        )
    print(f"\n## infinite mode, {total:,} tasks in batches of 1,000: traced KiB held")
    print("contender                   " + "".join(f"{m:>12,}" for m in sorted(marks)))
    for name, make in contenders.items():
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0] / 1024
            held = asyncio.run(_feed(make(), total, 1000, marks))
        finally:
            tracemalloc.stop()
        cells = "".join(f"{held[m] - base:>12,.0f}" for m in sorted(marks))
        print(f"{name:<28}{cells}")


def run(args: argparse.Namespace) -> None:
    rounds = max(1, args.rounds)
    sizes = [10_000] if args.quick else [10_000, 100_000]
    if osiiso is None:
        print("(osiiso not installed: it needs Python 3.13 — see bench/runner.py's docstring)")
    overhead(rounds, sizes)
    cancel_cost(50_000 if not args.quick else 10_000, 200)
    memory(100_000 if not args.quick else 20_000)


# -- instruction counts (valgrind) ------------------------------------------------------
_SCENARIOS = {
    "asyncio.TaskGroup+Semaphore": _taskgroup,
    "asyncio.gather+Semaphore": _gather,
    "leaseq.TaskRunner": _leaseq,
    "osiiso 1.1.0 AsyncQueue": _osiiso,
}


_CALLGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]


def _instructions(name: str, n: int, c: int) -> int:
    out = subprocess.run(
        [*_CALLGRIND, sys.executable, "-m", "bench.runner", "--one", name, str(n), str(c)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-500:]}")
    return int(found.group(1))


def instructions(n1: int, n2: int) -> None:
    names = [k for k in _SCENARIOS if osiiso is not None or not k.startswith("osiiso")]
    for c in (8, 100):
        table = Table(
            f"no-op body, concurrency {c}: machine instructions per task (valgrind)",
            baseline="asyncio.TaskGroup+Semaphore",
            higher_is_better=False,
        )
        per = {}
        for name in names:
            per[name] = (_instructions(name, n2, c) - _instructions(name, n1, c)) / (n2 - n1)
        peer = per.get("osiiso 1.1.0 AsyncQueue")
        for name, value in per.items():
            note = ""
            if name == "leaseq.TaskRunner" and peer is not None:
                note = f"{peer / value:.2f}x fewer than osiiso"
            table.rows.append(Row(name, value, "instr", note))
        print_table(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instructions", action="store_true", help="count with valgrind")
    parser.add_argument("--n1", type=int, default=1_000)
    parser.add_argument("--n2", type=int, default=6_000)
    parser.add_argument("--one", nargs=3, metavar=("NAME", "N", "C"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, n, c = args.one
        asyncio.run(_SCENARIOS[name](noop, int(n), int(c)))
    elif args.instructions:
        instructions(args.n1, args.n2)
    else:
        parser.error("use python -m bench runner for timings, or --instructions")


if __name__ == "__main__":
    main()
