"""Worker throughput: no-op jobs per second through ``leaseq.Worker`` (issue 4).

Side by side, interleaved round by round in one process:

* ``sqlite://``: the Worker (threads, sync ``Queue``) at concurrency 1 and 10
  vs the plain ``get`` + ``ack`` loop on the same store (the SQLite get+ack
  figure: the Worker must reach 0.7x of it) and huey's ``SqliteHuey`` running
  the same no-op task through its own consumer step (``dequeue`` + ``execute``,
  what each huey worker thread does, without its idle sleeps). Goal: 2x huey.
* ``memory://``: the Worker on an ``AsyncQueue`` with an async no-op handler
  at concurrency 1 and 10 vs a bare asyncio worker pool (``asyncio.Queue`` and
  N tasks: ``get``, call, ``task_done``). Goal: 0.5x the pool.

Each figure is the median of ``--rounds``; jobs are queued before the clock
starts and the clock stops when the last handler has run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.common import Row, Table, interleave, print_table
from bench.memory import floor_async_cycle, print_load

__all__ = ["run"]


def _sqlite_loop(n: int) -> float:
    import leaseq

    with tempfile.TemporaryDirectory() as d:
        q = leaseq.Queue(f"sqlite:///{d}/q.db", name="bench")
        q.put_many([{"i": i} for i in range(n)])
        start = time.perf_counter()
        for _ in range(n):
            q.ack(q.get(block=False))
        rate = n / (time.perf_counter() - start)
        q.close()
    return rate


def _worker_run(q: Any, n: int, concurrency: int, is_async: bool) -> float:
    """Run a Worker over ``n`` queued no-op jobs; jobs per second."""
    import leaseq

    done = 0
    finished = threading.Event()
    lock = threading.Lock()

    def count() -> None:
        nonlocal done
        with lock:
            done += 1
            if done == n:
                finished.set()

    if is_async:

        async def handler(value: Any) -> None:
            count()

        target: Callable[..., Any] = handler
    else:

        def sync_handler(value: Any) -> None:
            count()

        target = sync_handler
    worker = leaseq.Worker(q, target, concurrency=concurrency, poll_interval=0.05)
    stamps: list[float] = []

    def stop_when_done() -> None:
        finished.wait()
        stamps.append(time.perf_counter())
        worker.stop()

    watcher = threading.Thread(target=stop_when_done)
    watcher.start()
    start = time.perf_counter()
    worker.run(handle_signals=False)
    watcher.join()
    return n / (stamps[0] - start)


def _sqlite_worker(n: int, concurrency: int) -> float:
    import leaseq

    with tempfile.TemporaryDirectory() as d:
        q = leaseq.Queue(f"sqlite:///{d}/q.db", name="bench")
        q.put_many([{"i": i} for i in range(n)])
        rate = _worker_run(q, n, concurrency, is_async=False)
        q.close()
    return rate


def _huey(n: int) -> float:
    from huey import SqliteHuey

    with tempfile.TemporaryDirectory() as d:
        huey = SqliteHuey("bench", filename=f"{d}/huey.db", results=False)

        @huey.task()
        def noop(i: int) -> None:
            return None

        for i in range(n):
            noop(i)
        start = time.perf_counter()
        ran = 0
        while True:
            task = huey.dequeue()
            if task is None:
                break
            huey.execute(task)
            ran += 1
        rate = ran / (time.perf_counter() - start)
        huey.storage.close() if hasattr(huey.storage, "close") else None
    assert ran == n, f"huey ran {ran} of {n}"
    return rate


def _memory_worker(n: int, concurrency: int) -> float:
    import leaseq

    q = leaseq.AsyncQueue("memory://", name="bench")

    async def fill() -> None:
        await q.put_many([{"i": i} for i in range(n)])

    asyncio.run(fill())
    return _worker_run(q, n, concurrency, is_async=True)


def _asyncio_pool(n: int, concurrency: int) -> float:
    async def main() -> float:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait({"i": i})

        async def handler(value: Any) -> None:
            return None

        async def slot() -> None:
            while True:
                item = await queue.get()
                await handler(item)
                queue.task_done()

        start = time.perf_counter()
        tasks = [asyncio.create_task(slot()) for _ in range(concurrency)]
        await queue.join()
        elapsed = time.perf_counter() - start
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return n / elapsed

    return asyncio.run(main())


def _huey_available() -> str | None:
    try:
        import huey  # noqa: F401
    except ImportError:
        return "pip install huey (bench/requirements.txt)"
    return None


def run(args: argparse.Namespace) -> None:
    rounds = max(1, args.rounds)
    print_load("start")
    n_sql = 1000 if args.quick else 5000
    n_mem = 2000 if args.quick else 20000

    sql: dict[str, Callable[[], float]] = {
        "get+ack loop": lambda: _sqlite_loop(n_sql),
        "Worker c=1": lambda: _sqlite_worker(n_sql, 1),
        "Worker c=10": lambda: _sqlite_worker(n_sql, 10),
    }
    huey_missing = _huey_available()
    if huey_missing is None:
        sql["huey SqliteHuey"] = lambda: _huey(n_sql)
    got = interleave(sql, rounds)
    table = Table(f"sqlite://: {n_sql:,} no-op jobs", baseline="get+ack loop")
    for name, value in got.items():
        note = ""
        if name.startswith("Worker"):
            note = "goal: >= 0.7x get+ack loop"
            if "huey SqliteHuey" in got:
                note += f"; {value / got['huey SqliteHuey']:.2f}x huey (goal >= 2x)"
        table.rows.append(Row(name, value, unit="jobs/s", note=note))
    if huey_missing is not None:
        table.rows.append(Row("huey SqliteHuey", 0.0, note=f"skipped: {huey_missing}"))
    print_table(table)

    mem: dict[str, Callable[[], float]] = {
        "asyncio pool c=1": lambda: _asyncio_pool(n_mem, 1),
        "Worker c=1": lambda: _memory_worker(n_mem, 1),
        "asyncio pool c=10": lambda: _asyncio_pool(n_mem, 10),
        "Worker c=10": lambda: _memory_worker(n_mem, 10),
        # Not a worker: put+get+ack at the contract's floor (bench.memory.Floor), no handler.
        "floor: put+get+ack only": lambda: asyncio.run(floor_async_cycle(n_mem)),
    }
    got = interleave(mem, rounds)
    table = Table(f"memory://: {n_mem:,} no-op jobs (AsyncQueue)", baseline="asyncio pool c=1")
    for name, value in got.items():
        note = ""
        if name.startswith("Worker"):
            pool = got[name.replace("Worker", "asyncio pool")]
            note = f"{value / pool:.2f}x the pool at the same concurrency (goal >= 0.5x)"
        table.rows.append(Row(name, value, unit="jobs/s", note=note))
    print_table(table)
    print(
        f"(the floor row is the least a fenced put+get+ack costs in pure Python, with no "
        f"worker around it: {got['floor: put+get+ack only'] / got['asyncio pool c=1']:.2f}x "
        "the pool; a worker goal above it needs compiled code)"
    )
    print_load("end")
