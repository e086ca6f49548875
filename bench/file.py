"""The ``file://`` benchmark of issue 6: ``python -m bench file [--rounds N] [--quick]``.

Contenders, interleaved round by round (medians reported):

* **raw ceiling**: the bare system calls such a queue cannot avoid. Push:
  create+write+close a file in ``tmp/`` and rename it into ``ready/``. Pop+ack:
  rename ``ready/x`` to ``leased/x'`` (the claim), open+read+close it (the value),
  unlink it (the ack), from a name list made before the clock starts.
  Durable: fsync the file before its rename, and each changed directory after.
* **raw, ack renames** (pop+ack only): the same, but the ack renames the file
  into a trash directory instead of unlinking it, as the store does (it reuses
  trash files for puts): on ext4 mounted with ``discard``, unlinking a file
  whose blocks were written back costs many renames, so this row is the
  ceiling of the store's own design; the row above is the issue's.
* **leaseq store**: ``FileStore`` through the Store protocol (put / claim+ack).
* **leaseq Queue**: the public face (``Queue.put`` / ``get(block=False)``+``ack``).
* **femtoqueue 0.4.2** (``sync_after_write`` for durable; its pop never fsyncs).

Scenarios: push into an empty queue; pop+ack with a backlog of 1,000 and of
50,000 (the backlog is topped up between samples, untimed); a drain of a
backlog by 1, 2 and 4 processes (counting duplicates and losses). Each runs
non-durable and durable. Figures depend heavily on the filesystem and on the
machine's load: compare ratios within one run, on a quiet machine. Between
fills and timed samples the bench calls ``os.sync()`` (untimed), so that the
writeback of thousands of new files does not land in a timed sample.

``BENCH_DIR`` picks the filesystem (default: the temp dir); ``BENCH_FILE_ONLY``
(``push,pop,drain``) runs a subset.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import leaseq
from leaseq.stores.base import PutRequest
from leaseq.stores.file import FileStore, open_file

from .common import Row, Table, interleave, print_grid, print_table

try:  # a peer, installed by `make bench` (bench/requirements.txt)
    from femtoqueue import FemtoQueue
except ImportError:  # pragma: no cover - depends on the environment
    FemtoQueue = None

PAYLOAD = b"x" * 64
Q = "bench"


@dataclass(frozen=True)
class Sizes:
    push: int  # pushes per sample
    ops: int  # pop+ack per sample
    small: int  # backlog
    large: int  # backlog
    drain: int  # messages drained per sample
    drain_durable: int


FULL = Sizes(2_000, 500, 1_000, 50_000, 10_000, 2_000)
QUICK = Sizes(300, 100, 1_000, 5_000, 1_000, 300)


def _dir(base: str, name: str) -> str:
    path = os.path.join(base, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the raw ceiling ------------------------------------------------------------------
class Raw:
    """The bare file operations, no bookkeeping at all. ``trash``: the ack renames
    the file into a trash directory instead of unlinking it (what the store does)."""

    def __init__(self, path: str, durable: bool, trash: bool = False) -> None:
        self.path, self.durable, self.trash = path, durable, trash
        self.ready, self.leased, self.tmp = (os.path.join(path, d) for d in ("r", "l", "t"))
        self.bin = os.path.join(path, "x")
        for d in (self.ready, self.leased, self.tmp, self.bin):
            os.makedirs(d, exist_ok=True)
        self.n = 0
        self.names: collections.deque[str] = collections.deque()

    def push(self) -> None:
        self.n += 1
        name = f"{self.n:020d}.0000000000000000000000"
        tmp = f"{self.tmp}/{name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, PAYLOAD)
        if self.durable:
            os.fsync(fd)
        os.close(fd)
        os.rename(tmp, f"{self.ready}/{name}")
        if self.durable:
            _fsync_dir(self.ready)
        self.names.append(name)

    def pop_ack(self) -> None:
        name = self.names.popleft()
        leased = f"{self.leased}/{name}.lease"
        os.rename(f"{self.ready}/{name}", leased)
        if self.durable:
            _fsync_dir(self.leased)
            _fsync_dir(self.ready)
        fd = os.open(leased, os.O_RDONLY)
        os.read(fd, 65536)
        os.close(fd)
        if self.trash:
            os.rename(leased, f"{self.bin}/{name}")
        else:
            os.unlink(leased)
        if self.durable:
            _fsync_dir(self.leased)


# -- contenders as (setup, push, pop_ack) -------------------------------------------------
class Contender:
    """One queue implementation opened on one directory."""

    name = ""

    def push(self) -> None:
        raise NotImplementedError

    def pop_ack(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class RawC(Contender):
    name = "raw ceiling"

    def __init__(self, path: str, durable: bool) -> None:
        self.raw = Raw(path, durable)
        self.push = self.raw.push  # type: ignore[method-assign]
        self.pop_ack = self.raw.pop_ack  # type: ignore[method-assign]


class RawTrashC(Contender):
    name = "raw, ack renames"

    def __init__(self, path: str, durable: bool) -> None:
        self.raw = Raw(path, durable, trash=True)
        self.push = self.raw.push  # type: ignore[method-assign]
        self.pop_ack = self.raw.pop_ack  # type: ignore[method-assign]


class StoreC(Contender):
    name = "leaseq store"

    def __init__(self, path: str, durable: bool) -> None:
        self.store: FileStore = open_file(urlsplit(f"file://{path}"), durable=durable)
        self.req = PutRequest(PAYLOAD)

    def push(self) -> None:
        self.store.put(Q, self.req, now=time.time())

    def pop_ack(self) -> None:
        now = time.time()
        [lease] = self.store.claim(Q, now=now, lease_timeout=30.0, owner=None)
        self.store.ack(Q, lease, now=now)

    def close(self) -> None:
        self.store.close()


class QueueC(Contender):
    name = "leaseq Queue"

    def __init__(self, path: str, durable: bool) -> None:
        url = f"file://{path}" + ("?durable=1" if durable else "")
        self.q = leaseq.Queue(url, name=Q)

    def push(self) -> None:
        self.q.put(PAYLOAD)

    def pop_ack(self) -> None:
        self.q.ack(self.q.get(block=False))

    def close(self) -> None:
        self.q.close()


class FemtoC(Contender):
    name = "femtoqueue 0.4.2"

    def __init__(self, path: str, durable: bool) -> None:
        self.q = FemtoQueue(path, "bench", sync_after_write=durable)

    def push(self) -> None:
        self.q.push(PAYLOAD)

    def pop_ack(self) -> None:
        task = self.q.pop()
        assert task is not None
        self.q.done(task)


KINDS: list[type[Contender]] = [RawC, StoreC, QueueC] + ([FemtoC] if FemtoQueue else [])


def _timed(n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


# -- scenario 1: push -------------------------------------------------------------------
def bench_push(base: str, sizes: Sizes, rounds: int, durable: bool) -> Table:
    n = sizes.push // (4 if durable else 1)

    def sample(kind: type[Contender]) -> Callable[[], float]:
        def run() -> float:
            c = kind(_dir(base, "push"), durable)
            try:
                return _timed(n, c.push)
            finally:
                c.close()

        return run

    medians = interleave({k.name: sample(k) for k in KINDS}, rounds)
    label = "durable" if durable else "not durable"
    table = Table(f"push, {label} ({n} per sample)", "raw ceiling")
    table.rows = [Row(name, v) for name, v in medians.items()]
    print_table(table)
    return table


# -- scenario 2: pop+ack at a backlog -------------------------------------------------------
def bench_pop(base: str, sizes: Sizes, rounds: int, durable: bool, backlog: int) -> Table:
    k = sizes.ops // (4 if durable else 1)
    contenders: dict[str, Contender] = {}
    kinds: list[type[Contender]] = [*KINDS, RawTrashC]
    for kind in kinds:
        path = _dir(base, f"pop-{kind.__name__}")
        filler = kind(path, False)  # fill fast (untimed), then reopen as asked
        for _ in range(backlog):
            filler.push()
        if durable and not isinstance(filler, RawC | RawTrashC):
            filler.close()
            contenders[kind.name] = kind(path, True)
        else:
            if isinstance(filler, RawC | RawTrashC):
                filler.raw.durable = durable
            contenders[kind.name] = filler
        contenders[kind.name].pop_ack()  # warm: the first claim builds the view
    os.sync()  # settle: the fill's writeback must not land in a timed sample

    def sample(c: Contender) -> Callable[[], float]:
        def run() -> float:
            rate = _timed(k, c.pop_ack)
            durable_flag = getattr(getattr(c, "raw", None), "durable", None)
            if durable_flag:
                c.raw.durable = False  # type: ignore[attr-defined]
            for _ in range(k):  # top the backlog up again, untimed
                c.push()
            if durable_flag:
                c.raw.durable = True  # type: ignore[attr-defined]
            os.sync()
            return rate

        return run

    medians = interleave({name: sample(c) for name, c in contenders.items()}, rounds)
    for c in contenders.values():
        c.close()
    label = "durable" if durable else "not durable"
    table = Table(f"pop+ack at a {backlog:,} backlog, {label} ({k} per sample)", "raw ceiling")
    table.rows = [Row(name, v) for name, v in medians.items()]
    print_table(table)
    return table


# -- scenario 3: drains by several processes ----------------------------------------------
def _drain_worker(kind: str, path: str, durable: bool, start: Any, out: Any) -> None:
    start.wait()
    got: list[str] = []
    if kind == "raw ceiling":
        got = _raw_drain(path, durable)
    elif kind == "leaseq store":
        store = open_file(urlsplit(f"file://{path}"), durable=durable)
        while leases := store.claim(Q, now=time.time(), lease_timeout=30.0, owner=None):
            store.ack(Q, leases[0], now=time.time())
            got.append(leases[0].id)
        store.close()
    else:
        fq = FemtoQueue(path, f"node{os.getpid()}", sync_after_write=durable)
        while task := fq.pop():
            fq.done(task)
            got.append(task.id)
    out.put(got)


def _raw_drain(path: str, durable: bool) -> list[str]:
    ready, leased = os.path.join(path, "r"), os.path.join(path, "l")
    got = []
    while names := sorted(os.listdir(ready)):
        for name in names:
            dst = f"{leased}/{name}.{os.getpid()}"
            try:
                os.rename(f"{ready}/{name}", dst)
            except FileNotFoundError:
                continue
            if durable:
                _fsync_dir(leased)
                _fsync_dir(ready)
            fd = os.open(dst, os.O_RDONLY)
            os.read(fd, 65536)
            os.close(fd)
            os.unlink(dst)
            if durable:
                _fsync_dir(leased)
            got.append(name)
    return got


def bench_drain(
    base: str, sizes: Sizes, rounds: int, durable: bool
) -> tuple[list[Table], list[str]]:
    n = sizes.drain_durable if durable else sizes.drain
    kinds = [k for k in KINDS if k is not QueueC]
    ctx = mp.get_context("spawn")
    tables = []
    problems: list[str] = []
    for procs in (1, 2, 4):

        def sample(kind: type[Contender], procs: int = procs) -> Callable[[], float]:
            def run() -> float:
                path = _dir(base, "drain")
                filler = kind(path, False)
                for _ in range(n):
                    filler.push()
                filler.close()
                os.sync()
                start, out = ctx.Event(), ctx.Queue()
                workers = [
                    ctx.Process(target=_drain_worker, args=(kind.name, path, durable, start, out))
                    for _ in range(procs)
                ]
                for w in workers:
                    w.start()
                time.sleep(0.5)  # let them import and open (not timed)
                t0 = time.perf_counter()
                start.set()
                got = [x for _ in workers for x in out.get()]
                elapsed = time.perf_counter() - t0
                for w in workers:
                    w.join()
                dups, lost = len(got) - len(set(got)), n - len(set(got))
                if dups or lost:
                    problems.append(f"{kind.name} x{procs}: {dups} duplicates, {lost} lost")
                return n / elapsed

            return run

        medians = interleave({k.name: sample(k) for k in kinds}, rounds)
        label = "durable" if durable else "not durable"
        table = Table(f"drain of {n:,} by {procs} process(es), {label}", "raw ceiling")
        table.rows = [Row(name, v, "msg/s") for name, v in medians.items()]
        print_table(table)
        tables.append(table)
    print("drain problems:", "; ".join(problems) if problems else "none (0 duplicates, 0 lost)")
    return tables, problems


# -- summary ----------------------------------------------------------------------------------
def _v(table: Table, name: str) -> float:
    return next(r.value for r in table.rows if r.name == name)


def run(args: argparse.Namespace) -> None:
    sizes = QUICK if args.quick else FULL
    rounds = max(1, args.rounds)
    base = tempfile.mkdtemp(prefix="leaseq-bench-file-", dir=os.environ.get("BENCH_DIR"))
    print(f"(rounds={rounds}, sizes={sizes}, directory={base})")
    if FemtoQueue is None:
        print("femtoqueue not installed (pip install -r bench/requirements.txt): skipped")
    only = set(filter(None, os.environ.get("BENCH_FILE_ONLY", "push,pop,drain").split(",")))
    rows: list[tuple[str, str, str, str]] = []
    raw, st = "raw ceiling", "leaseq store"

    def ratio(target: str, goal: float, got: float, most: bool = False) -> None:
        ok = got <= goal if most else got >= goal
        verdict = "PASS" if ok else "FAIL"
        rows.append((target, f"{'<=' if most else '>='} {goal}x", f"{got:.3f}x", verdict))

    try:
        if "push" in only:
            push = bench_push(base, sizes, rounds, False)
            push_d = bench_push(base, sizes, rounds, True)
            ratio("push vs raw, not durable", 0.8, _v(push, st) / _v(push, raw))
            ratio("push vs raw, durable", 0.8, _v(push_d, st) / _v(push_d, raw))
        if "pop" in only:
            small = bench_pop(base, sizes, rounds, False, sizes.small)
            large = bench_pop(base, sizes, rounds, False, sizes.large)
            small_d = bench_pop(base, sizes, rounds, True, sizes.small)
            ratio("pop+ack vs raw at 1,000", 0.8, _v(small, st) / _v(small, raw))
            trash = _v(small, RawTrashC.name)
            # Not one of the targets (its ceiling unlinks): the stricter
            # ceiling of this store's own design, held to the same 0.8x.
            ratio("extra: vs raw (ack renames) at 1,000", 0.8, _v(small, st) / trash)
            if FemtoQueue is not None:
                fq = _v(small, FemtoC.name)
                ratio("pop+ack vs femtoqueue at 1,000", 1.0, _v(small, st) / fq)
            cost = _v(small, st) / _v(large, st)
            ratio(f"pop+ack cost at {sizes.large:,} vs 1,000", 1.5, cost, True)
            raw_cost = _v(small, raw) / _v(large, raw)
            print(f"\n(the raw ceiling's own cost at {sizes.large:,} vs 1,000: {raw_cost:.3f}x)")
            ratio("pop+ack vs raw at 1,000, durable", 0.8, _v(small_d, st) / _v(small_d, raw))
        if "drain" in only:
            _drains, problems = bench_drain(base, sizes, max(1, rounds // 2), False)
            _drains_d, problems_d = bench_drain(base, sizes, 1, True)
            bad = [p for p in problems + problems_d if p.startswith("leaseq")]
            verdict = "FAIL" if bad else "PASS"
            rows.append(("leaseq drains: duplicates, lost", "0", "; ".join(bad) or "0", verdict))
            peers = [p for p in problems + problems_d if not p.startswith("leaseq")]
            if peers:
                print("\npeers' drain problems:", "; ".join(peers))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print_grid("Summary: acceptance targets of issue 6", ("target", "goal", "measured", ""), rows)
