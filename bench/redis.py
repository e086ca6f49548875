"""redis:// benchmarks: put+get+ack cycles, put->blocked-get latency, worker no-op throughput.

Contenders, side by side in one run (medians of interleaved measurements; the
cycle contenders run in long-lived client processes that take turns in short
slices, and only the cycle loops are timed, never imports or connecting):

* ``leaseq``: ``leaseq.Queue("redis://...")`` on the server's clock.
* ``raw-lua``: the ceiling; the same Lua scripts called with redis-py's
  ``execute_command("EVALSHA", ...)`` and nothing around them (arguments prepared
  once, replies not decoded beyond the id and token an ack needs).
* ``saq``: SAQ (``pip install saq``) enqueue + dequeue + finish, and its worker in
  burst mode, where the scenario is comparable.

The server is ``LEASEQ_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); every
contender writes under its own fresh key prefix and deletes its keys after.
Figures are noisy on a shared machine: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import time
import uuid
from typing import Any

from bench.common import Row, Table, interleave, print_grid, print_tables

URL = os.environ.get("LEASEQ_REDIS_URL", "redis://127.0.0.1:6379/0")
VALUE = {"to": "user@example.com", "n": 1}
CTX = mp.get_context("spawn")


def _prefix() -> str:
    return f"leaseq-bench-{uuid.uuid4().hex[:8]}:"


def _cleanup(prefix: str) -> None:
    import redis

    c = redis.Redis.from_url(URL)
    keys = list(c.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        c.delete(*keys[i : i + 500])
    c.close()


# -- put+get+ack cycles ----------------------------------------------------------------
# Each contender is split in two: ``open`` (imports, connection, script loading: not
# timed) returns ``(loop, close)``; only ``loop(n)`` runs between the barrier and
# the clock stop, so process start-up and imports are not counted for anyone.
Loop = Any


def _cycles_leaseq(prefix: str) -> Loop:
    import leaseq

    q = leaseq.Queue(f"{URL}?prefix={prefix}", name="cycles")
    put, get, ack = q.put, q.get, q.ack

    def loop(n: int) -> None:
        for _ in range(n):
            put(VALUE)
            ack(get(timeout=10))

    return loop, q.close


def _cycles_raw(prefix: str) -> Loop:
    import json

    import redis
    from leaseq.stores.redis._ops import queue_base
    from leaseq.stores.redis._scripts import SCRIPTS

    c = redis.Redis.from_url(URL)
    for s in SCRIPTS.values():
        c.script_load(s.text)
    base = queue_base(prefix, "cycles")
    head = ["", f"{prefix}wake", "raw"]
    value = b"s" + json.dumps(VALUE).encode()
    put = [SCRIPTS["put"].sha, 1, base, *head, 1, 1, 0, "0", "", value, 0, "0.0", ""]
    put += ["update", "update", ""]
    claim = [SCRIPTS["claim"].sha, 1, base, *head, "30.0", "0", "", 1]
    settle = SCRIPTS["settle"].sha
    ex = c.execute_command

    def loop(n: int) -> None:
        for _ in range(n):
            ex("EVALSHA", *put)
            got = ex("EVALSHA", *claim)[2]
            while not got:  # another client took ours: claim again (a spin, no waiting)
                got = ex("EVALSHA", *claim)[2]
            r = got[0]
            ex("EVALSHA", settle, 1, base, *head, "ack", r[0], r[13], "0", "", "0", "", "", "")

    return loop, c.close


def _cycles_saq(prefix: str) -> Loop:
    from saq import Queue, Status

    loop_ = asyncio.new_event_loop()
    q = Queue.from_url(URL, name=f"{prefix}cycles")
    loop_.run_until_complete(q.connect())

    async def go(n: int) -> None:
        for _ in range(n):
            await q.enqueue("noop", v=VALUE)
            job = await q.dequeue(timeout=10)
            await q.finish(job, Status.COMPLETE)

    def close() -> None:
        loop_.run_until_complete(q.disconnect())
        loop_.close()

    return (lambda n: loop_.run_until_complete(go(n))), close


CYCLES = {"leaseq": _cycles_leaseq, "raw-lua": _cycles_raw, "saq": _cycles_saq}


SLICES = 5  # slices per round: contenders alternate every n/SLICES cycles


def _client(fn_name: str, prefix: str, conn: Any) -> None:
    """One client process: opens once, then runs ``n`` cycles per request until 0."""
    loop, close = CYCLES[fn_name](prefix)
    conn.send("ready")
    while n := conn.recv():
        start = time.perf_counter()
        loop(n)
        conn.send((start, time.perf_counter()))
    close()
    conn.send("closed")


class _Clients:
    """``clients`` live processes of one contender on one fresh queue."""

    def __init__(self, name: str, clients: int) -> None:
        self.prefix = _prefix()
        self.conns = []
        self.procs = []
        for _ in range(clients):
            parent, child = CTX.Pipe()
            self.procs.append(CTX.Process(target=_client, args=(name, self.prefix, child)))
            self.conns.append(parent)
        for p in self.procs:
            p.start()
        for c in self.conns:
            assert c.recv() == "ready"

    def run(self, n: int) -> float:
        """Cycles per second while every client does ``n`` cycles at once."""
        for c in self.conns:
            c.send(n)
        spans = [c.recv() for c in self.conns]
        return len(self.conns) * n / (max(e for _, e in spans) - min(s for s, _ in spans))

    def close(self) -> None:
        for c in self.conns:
            c.send(0)
        for c in self.conns:
            c.recv()
        for p in self.procs:
            p.join()
        _cleanup(self.prefix)


def _cycles(names: list[str], clients: int, n: int, rounds: int) -> dict[str, float]:
    """Median cycles/s per contender. Every contender's processes start (imports,
    connections: not timed) before any is measured; then the contenders take turns
    in short slices, so a burst of load from elsewhere hits all of them alike."""
    groups = {x: _Clients(x, clients) for x in names}
    try:
        step = max(1, n // SLICES)
        slices = {x: (lambda g=g: g.run(step)) for x, g in groups.items()}
        return interleave(slices, rounds * SLICES)
    finally:
        for g in groups.values():
            g.close()


def _available(names: list[str]) -> list[str]:
    try:
        import saq  # noqa: F401
    except ModuleNotFoundError:
        print("(saq is not installed: pip install saq to compare with it)")
        return [x for x in names if x != "saq"]
    return names


def _cycles_table(clients: int, n: int, rounds: int) -> Table:
    names = _available(list(CYCLES))
    medians = _cycles(names, clients, n, rounds)
    rows = [Row(x, medians[x], "cycles/s") for x in names]
    return Table(f"put+get+ack cycles, {clients} client process(es)", "raw-lua", rows)


# -- latency ----------------------------------------------------------------------------
def _latency_consumer(prefix: str, n: int, conn: Any) -> None:
    import leaseq

    with leaseq.Queue(f"{URL}?prefix={prefix}", name="lat") as q:
        conn.send("ready")
        for _ in range(n):
            lease = q.get(timeout=30)
            conn.send(time.time() - lease.value)
            q.ack(lease)


def _latency(n: int) -> list[float]:
    import leaseq

    prefix = _prefix()
    parent, child = CTX.Pipe()
    proc = CTX.Process(target=_latency_consumer, args=(prefix, n, child))
    proc.start()
    parent.recv()
    samples = []
    with leaseq.Queue(f"{URL}?prefix={prefix}", name="lat") as q:
        for _ in range(n):
            time.sleep(0.005)  # let the consumer block in get() again
            q.put(time.time())
            samples.append(parent.recv())
    proc.join()
    _cleanup(prefix)
    return samples


# -- worker no-op throughput -----------------------------------------------------------
def _worker_leaseq(n: int) -> tuple[float, float]:
    """(jobs/s from start to the n-th ack, seconds the Worker took to return after it)."""
    import leaseq

    prefix = _prefix()
    url = f"{URL}?prefix={prefix}"
    with leaseq.Queue(url, name="work") as q:
        for i in range(0, n, 500):
            q.put_many([VALUE] * min(500, n - i))

    async def go() -> tuple[float, float]:
        q = leaseq.AsyncQueue(url, name="work")
        await q.qsize()  # connect before the clock starts, as SAQ's q.connect() does
        acked = 0
        last = 0.0
        worker: Any = None
        ack = q.ack

        # The clock stops at the n-th ack, as SAQ's stops in after_process (after
        # its finish): both figures are start -> last job settled.
        async def counted_ack(lease: Any, **kwargs: Any) -> None:
            nonlocal acked, last
            await ack(lease, **kwargs)
            acked += 1
            if acked >= n:
                last = time.perf_counter()
                worker.stop()

        q.ack = counted_ack  # type: ignore[method-assign]

        async def noop(value: Any) -> None:
            return None

        worker = leaseq.Worker(q, noop, concurrency=10)
        start = time.perf_counter()
        await worker.run_async(handle_signals=False)
        stopped = time.perf_counter() - last
        await q.close()
        return n / (last - start), stopped

    rate = asyncio.run(go())
    _cleanup(prefix)
    return rate


async def noop(ctx: Any, **kwargs: Any) -> None:
    """SAQ's no-op task (SAQ finds functions by name: module level)."""
    return None


def _worker_saq(n: int) -> float:
    from saq import Queue, Worker

    prefix = _prefix()

    async def go() -> float:
        q = Queue.from_url(URL, name=f"{prefix}work")
        await q.connect()
        for _ in range(n):
            await q.enqueue("noop", v=VALUE)
        last = [0.0]

        async def done(ctx: Any) -> None:
            last[0] = time.perf_counter()

        # Burst mode stops after dequeue_timeout without jobs: time to the last job.
        worker = Worker(
            q,
            functions=[noop],
            concurrency=10,
            burst=True,
            dequeue_timeout=0.2,
            after_process=done,
        )
        start = time.perf_counter()
        await worker.start()
        elapsed = last[0] - start
        await q.disconnect()
        return n / elapsed

    rate = asyncio.run(go())
    _cleanup(prefix)
    return rate


def _in_child(fn: Any, *args: Any) -> Any:
    with CTX.Pool(1) as pool:
        return pool.apply(fn, args)


def _worker_table(n: int, rounds: int) -> Table:
    stops: list[float] = []

    def leaseq_rate() -> float:
        rate, stop = _in_child(_worker_leaseq, n)
        stops.append(stop)
        return float(rate)

    contenders = {"leaseq Worker": leaseq_rate}
    if "saq" in _available(["saq"]):
        contenders["saq Worker (burst)"] = lambda: float(_in_child(_worker_saq, n))
    medians = interleave(contenders, rounds)
    note = f"stop() took {statistics.median(stops):.2f}s more (not counted)"
    rows = [Row(x, v, "jobs/s", note if x == "leaseq Worker" else "") for x, v in medians.items()]
    base = "saq Worker (burst)" if "saq Worker (burst)" in medians else "leaseq Worker"
    return Table(f"worker no-op throughput, {n} jobs, concurrency 10", base, rows)


def run(args: argparse.Namespace) -> None:
    quick = getattr(args, "quick", False)
    rounds = 1 if quick else max(1, args.rounds)
    n = 200 if quick else 2000
    tables = [_cycles_table(1, n, rounds), _cycles_table(4, n // 2, rounds)]
    print_tables(tables)
    samples = sorted(_latency(50 if quick else 300))
    q = statistics.quantiles(samples, n=100)
    print_grid(
        "put -> blocked get across processes (leaseq, pub/sub wake-up)",
        ["samples", "p50 ms", "p95 ms", "max ms"],
        [
            [
                str(len(samples)),
                f"{q[49] * 1e3:.2f}",
                f"{q[94] * 1e3:.2f}",
                f"{samples[-1] * 1e3:.2f}",
            ]
        ],
    )
    print_tables([_worker_table(500 if quick else 5000, rounds)])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redis")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
