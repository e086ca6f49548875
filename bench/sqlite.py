"""Durable scenarios: leaseq ``sqlite://`` beside raw ``sqlite3`` ceilings and PyPI peers.

Every measurement runs in a fresh child process (``python -m bench.sqlite
--child SPEC``) on a fresh database in a temporary directory, so contenders
never share caches or imports (localqueue 1.4.1 and 0.5.0 cannot live in one
process). Rounds interleave the contenders; tables show medians.

Ceilings ("raw"): the statements leaseq runs on its fast paths (put: one
autocommit INSERT; get: one autocommit UPDATE ... RETURNING; ack: one
autocommit DELETE; put_many: one executemany transaction) with the same
PRAGMAs, schema and checkpoint regime, from a bare ``sqlite3`` connection.
The consumer-process table runs raw consumers too (the claim and ack
statements in a loop, "locked" retried with leaseq's backoff): SQLite has one
writer, so how raw consumers scale with processes bounds what any library
running one transaction per claim and per ack can reach. Its last group gives
each leaseq message 0.2 ms of CPU work, as a handler would.

Peers run at their defaults: localqueue 1.4.1 ``SimpleQueue`` and 0.5.0
``PersistentQueue`` (installed with ``pip install --target
bench/.peers/localqueue-0.5.0 localqueue==0.5.0``), persist-queue
``SQLiteAckQueue``, litequeue ``LiteQueue`` (pop + done), huey
``SqliteStorage`` (enqueue/dequeue: it has no ack step, so it does less work).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Row, Table, interleave, print_table

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / ".peers"
LQ05 = PEERS / "localqueue-0.5.0"
VALUE = {"to": "user@example.com", "n": 1}

# Contenders per scenario (name -> child kind); missing peers are skipped with a note.
PUT = [
    "raw",
    "leaseq",
    "localqueue-1.4.1",
    "localqueue-0.5.0",
    "persist-queue",
    "litequeue",
    "huey",
]
# "leaseq+result": get + ack(result=...), the ack that writes the results ledger too.
GETACK = [*PUT[:2], "leaseq+result", *PUT[2:]]
# Slow peers get fewer operations per round (the rate is per operation).
SLOW = {"persist-queue": 0.15, "localqueue-0.5.0": 0.25, "huey": 0.5}


# -- the parent ----------------------------------------------------------------------------
def _child(spec: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory(prefix="leaseq-bench-") as tmp:
        spec = {**spec, "dir": tmp}
        out = subprocess.run(
            [sys.executable, "-m", "bench.sqlite", "--child", json.dumps(spec)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if out.returncode != 0:
        raise RuntimeError(f"bench child {spec['kind']} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _available(name: str) -> str | None:
    """None if the contender can run, else why not."""
    modules = {
        "localqueue-1.4.1": "localqueue",
        "persist-queue": "persistqueue",
        "litequeue": "litequeue",
        "huey": "huey",
    }
    if name == "localqueue-0.5.0":
        if not LQ05.is_dir():  # a second version cannot live in .venv: its own directory
            cmd = [sys.executable, "-m", "pip", "install", "-q", "--target", str(LQ05)]
            subprocess.run([*cmd, "localqueue==0.5.0"], check=False)
        return None if LQ05.is_dir() else f"pip install --target {LQ05} localqueue==0.5.0"
    module = modules.get(name)
    if module is None:
        return None
    import importlib.util

    return None if importlib.util.find_spec(module) else f"pip install {name}"


def _rate_table(title: str, scenario: str, names: list[str], n: int, rounds: int) -> Table:
    table = Table(title, baseline="leaseq")
    skipped: dict[str, str] = {}
    runnable = {}
    for name in names:
        why = _available(name)
        if why:
            skipped[name] = why
            continue
        count = max(50, int(n * SLOW.get(name, 1.0)))
        spec = {"kind": scenario, "who": name, "n": count}
        runnable[name] = lambda spec=spec: float(_child(spec)["rate"])
    medians = interleave(runnable, rounds)
    for name in names:
        if name in medians:
            table.rows.append(Row(name, medians[name]))
        else:
            table.rows.append(Row(name, 0.0, note=f"skipped: {skipped[name]}"))
    return table


def _backlog_table(args: argparse.Namespace) -> Table:
    small, big = (1_000, 20_000) if args.quick else (1_000, 100_000)
    got = _child({"kind": "backlog", "small": small, "big": big, "n": 1000, "rounds": args.rounds})
    table = Table(f"get+ack cost vs backlog ({small:,} vs {big:,} waiting)", baseline=f"{small:,}")
    table.higher_is_better = False
    table.rows.append(Row(f"{small:,}", got["small_us"], unit="us/op"))
    table.rows.append(
        Row(f"{big:,}", got["big_us"], unit="us/op", note="acceptance: ratio >= 0.83")
    )
    return table


#: Groups of the consumer table: (label, child kind, CPU seconds of "work" per message).
_CONSUMER_GROUPS = (
    ("leaseq", "leaseq", 0.0),
    ("raw", "raw", 0.0),
    ("leaseq + 0.2 ms CPU work", "leaseq", 0.0002),
)


def _consumers_table(args: argparse.Namespace) -> Table:
    total = 1_000 if args.quick else 3_000
    table = Table(f"consumer processes draining {total:,} messages", baseline="leaseq, 1 process")
    ones = {}
    for label, who, work in _CONSUMER_GROUPS:
        for procs in (1, 2, 4):
            spec = {"kind": "consumers", "who": who, "procs": procs, "n": total, "work": work}
            runs = [_child(spec) for _ in range(3)]
            rates = [r["rate"] for r in runs]
            dups = sum(r["duplicates"] for r in runs)
            lost = sum(r["lost"] for r in runs)
            rate = statistics.median(rates)
            ones.setdefault(label, rate)
            scale = rate / ones[label]
            note = f"duplicates={dups} lost={lost} (3 runs); {scale:.2f}x its 1 process"
            if label == "leaseq" and procs == 2:
                note += " (goal: >= 1.3x)"
            name = f"{label}, {procs} process" + ("es" if procs > 1 else "")
            table.rows.append(Row(name, rate, note=note))
    return table


def _latency_tables(args: argparse.Namespace) -> list[Table]:
    n = 150 if args.quick else 400
    got = _child({"kind": "latency", "who": "leaseq", "n": n})
    lat = Table("put-to-get latency, consumer blocked in another process", baseline="p50")
    lat.higher_is_better = False
    lat.rows.append(Row("p50", got["p50"] * 1e3, unit="ms", note="acceptance: <= 2 ms"))
    lat.rows.append(Row("p99", got["p99"] * 1e3, unit="ms", note="acceptance: <= 10 ms"))
    lat.rows.append(Row("max", got["max"] * 1e3, unit="ms"))
    idle = _child({"kind": "idle", "seconds": 3.0})
    cpu = Table("an idle consumer blocked in get(), measured for 3 s", baseline="cpu")
    cpu.rows.append(Row("cpu", idle["cpu_pct"], unit="% core", note="acceptance: < 2 %"))
    cpu.rows.append(
        Row("commits", idle["commits"], unit="seen", note="data_version changes while idle")
    )
    cpu.rows.append(
        Row("lock", idle["lock_busy"], unit="busy", note=f"of {idle['lock_tries']} BEGIN IMMEDIATE")
    )
    return [lat, cpu]


def _paired_table(args: argparse.Namespace) -> Table:
    table = Table("leaseq vs raw ceiling, interleaved in one process", baseline="ratio")
    sizes = {"put": 300 if args.quick else 1_000, "put_many": 2_000 if args.quick else 20_000}
    sizes["getack"] = sizes["put"]
    floors = {"put": 0.8, "put_many": 0.8, "getack": 0.7}
    for what, n in sizes.items():
        got = _child({"kind": "paired", "what": what, "n": n, "rounds": 2 * args.rounds + 1})
        ratio = got["leaseq"] / got["raw"]
        note = (
            f"leaseq {got['leaseq']:,.0f}/s, raw {got['raw']:,.0f}/s; acceptance >= {floors[what]}"
        )
        table.rows.append(Row(what, ratio, unit="x raw", note=note))
    table.baseline = ""
    return table


def run(args: argparse.Namespace) -> None:
    rounds = args.rounds
    quick = args.quick
    print("(durability: normal = WAL + synchronous=NORMAL for leaseq and raw; peers at defaults)")
    n = 300 if quick else 2_000
    print_table(_rate_table("single put (one transaction each)", "put", PUT, n, rounds))
    many = 2_000 if quick else 20_000
    print_table(
        _rate_table(
            f"put_many of {many:,} (one transaction)", "put_many", ["raw", "leaseq"], many, rounds
        )
    )
    print_table(_rate_table("get + ack (non-blocking get)", "getack", GETACK, n, rounds))
    print_table(_paired_table(args))
    print_table(_backlog_table(args))
    print_table(_consumers_table(args))
    for table in _latency_tables(args):
        print_table(table)


# -- the children ----------------------------------------------------------------------------
def _leaseq_queue(spec: dict[str, Any], name: str = "q.db") -> Any:
    import leaseq

    return leaseq.Queue(f"sqlite:///{spec['dir']}/{name}", name="bench")


def _timed(n: int, fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


class _Raw:
    """leaseq's own statements on a bare connection (the ceiling).

    Same schema, same PRAGMAs (``synchronous``, ``wal_autocheckpoint``) and the
    same background checkpoints every ``CHECKPOINT_EVERY`` commits, so both
    sides pay the same I/O; values are JSON-encoded per operation (any queue
    must serialize). What is left out is everything leaseq does in Python.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        import sqlite3

        from leaseq.stores import _sqlite_db as D

        path = f"{spec['dir']}/raw.db"
        self.db = D.Database(path, synchronous="NORMAL", busy_timeout=10.0, label="raw")
        self.every = D.CHECKPOINT_EVERY
        self.commits = 0
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {D.SAFETY_CHECKPOINT_PAGES}")
        self.conn.execute(f"PRAGMA mmap_size = {D.MMAP_BYTES}")
        self.seq = time.time_ns()

    def committed(self) -> None:
        self.commits += 1
        if self.commits % self.every == 0:
            self.db._checkpointer.request()

    def params(self) -> tuple[Any, ...]:
        now = time.time()
        self.seq += 1
        hist = f'[[{now!r},"put",null]]'
        mid = f"raw-{self.seq}"
        data = json.dumps(VALUE)
        return (mid, "bench", mid, data, 0, 0, None, now, now, now, self.seq, hist)

    def put(self, n: int) -> None:
        from leaseq.stores import sqlite_queries as Q

        ex = self.conn.execute
        for _ in range(n):
            ex(Q.INSERT, self.params())  # autocommit: leaseq's fast path
            self.committed()

    def put_many(self, n: int) -> None:
        from leaseq.stores import sqlite_queries as Q

        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(Q.INSERT, [self.params() for _ in range(n)])
        self.conn.execute("COMMIT")
        self.committed()

    def get_ack(self, n: int) -> None:
        from leaseq.stores import sqlite_queries as Q

        ex = self.conn.execute
        for _ in range(n):
            now = time.time()
            self.seq += 1
            rows = ex(Q.CLAIM_FAST, ("t", None, now, now + 30, self.seq, "bench")).fetchall()
            json.loads(rows[0][3])
            self.committed()
            ex(Q.ACK_FAST, (rows[0][1], "bench", "t", now)).fetchall()
            self.committed()


def _peer(who: str, spec: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(put(value), get_ack(), put_many(values) or None) for a peer at its defaults."""
    d = spec["dir"]
    if who == "leaseq":
        q = _leaseq_queue(spec)

        def get_ack() -> None:
            q.ack(q.get(block=False))

        return q.put, get_ack, q.put_many
    if who == "leaseq+result":  # the ack also records the outcome (one transaction)
        q = _leaseq_queue(spec)

        def get_ack_result() -> None:
            lease = q.get(block=False)
            q.ack(lease, result=lease.value)

        return q.put, get_ack_result, q.put_many
    if who == "localqueue-1.4.1":
        from localqueue import SimpleQueue

        lq = SimpleQueue(f"{d}/lq", "bench")
        return lq.put, lambda: lq.ack(lq.get(block=False)), None
    if who == "localqueue-0.5.0":
        sys.path.insert(0, str(LQ05))
        from localqueue import PersistentQueue  # type: ignore[attr-defined]

        pq5 = PersistentQueue("bench", store_path=f"{d}/lq05.db")
        return pq5.put, lambda: pq5.ack(pq5.get_message(block=False)), None
    if who == "persist-queue":
        import persistqueue

        aq = persistqueue.SQLiteAckQueue(f"{d}/pq")
        return aq.put, lambda: aq.ack(aq.get(block=False)), None
    if who == "litequeue":
        from litequeue import LiteQueue

        ltq = LiteQueue(f"{d}/lite.db")
        return (
            lambda v: ltq.put(json.dumps(v)),
            lambda: ltq.done(ltq.pop().message_id),
            None,
        )
    if who == "huey":
        from huey.storage import SqliteStorage

        hs = SqliteStorage(name="bench", filename=f"{d}/huey.db")
        return lambda v: hs.enqueue(json.dumps(v).encode()), hs.dequeue, None
    raise ValueError(who)


def _child_rate(spec: dict[str, Any]) -> dict[str, Any]:
    who, n, kind = spec["who"], spec["n"], spec["kind"]
    if who == "raw":
        raw = _Raw(spec)
        if kind == "getack":
            raw.put_many(n)
            return {"rate": _timed(n, lambda: raw.get_ack(n))}
        fn = raw.put if kind == "put" else raw.put_many
        rate = _timed(n, lambda: fn(n))
        raw.db.close()
        return {"rate": rate}
    put, get_ack, put_many = _peer(who, spec)
    if kind == "put":

        def puts() -> None:
            for _ in range(n):
                put(VALUE)

        return {"rate": _timed(n, puts)}
    if kind == "put_many":
        return {"rate": _timed(n, lambda: put_many([VALUE] * n))}
    if put_many is not None:
        put_many([VALUE] * n)
    else:
        for _ in range(n):
            put(VALUE)

    def drain() -> None:
        for _ in range(n):
            get_ack()

    return {"rate": _timed(n, drain)}


def _child_backlog(spec: dict[str, Any]) -> dict[str, Any]:
    n, rounds = spec["n"], spec["rounds"]
    small = _leaseq_queue(spec, "small.db")
    big = _leaseq_queue(spec, "big.db")
    small.put_many([VALUE] * spec["small"])
    for start in range(0, spec["big"], 20_000):
        big.put_many([VALUE] * min(20_000, spec["big"] - start))
    costs: dict[str, list[float]] = {"small": [], "big": []}
    for _ in range(rounds):
        for name, q in (("small", small), ("big", big)):
            q.put_many([VALUE] * n)  # keep the backlog at its size (not timed)
            start = time.perf_counter()
            for _ in range(n):
                q.ack(q.get(block=False))
            costs[name].append((time.perf_counter() - start) / n * 1e6)
    return {k + "_us": statistics.median(v) for k, v in costs.items()}


def _consume(url: str, barrier: Any, out: Any, work: float = 0.0) -> None:
    import leaseq

    q = leaseq.Queue(url, name="bench")
    got = []
    barrier.wait()
    while True:
        try:
            lease = q.get(block=False)
        except leaseq.Empty:
            break
        if work:  # a handler's CPU time, spent outside the store
            until = time.thread_time() + work
            while time.thread_time() < until:
                pass
        q.ack(lease)
        got.append(lease.value["i"])
    out.put((got, time.perf_counter()))
    q.close()


def _raw_consume(path: str, barrier: Any, out: Any) -> None:
    """The ceiling of a consumer process: leaseq's claim and ack statements on a bare
    connection, "locked" retried with leaseq's own backoff (a short sleep, doubling)."""
    import random
    import sqlite3

    from leaseq.stores import _sqlite_db as D
    from leaseq.stores import sqlite_queries as Q

    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint = {D.SAFETY_CHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA mmap_size = {D.MMAP_BYTES}")
    seq = time.time_ns()

    def run(sql: str, params: tuple[Any, ...]) -> list[Any]:
        pause = D._RETRY_FIRST
        while True:
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, D._RETRY_MAX)

    got = []
    barrier.wait()
    while True:
        now = time.time()
        seq += 1
        token = os.urandom(8).hex()
        rows = run(Q.CLAIM_FAST, (token, None, now, now + 30, seq, "bench"))
        if not rows:
            break
        value = json.loads(rows[0][3])
        run(Q.ACK_FAST, (rows[0][1], "bench", token, now))
        got.append(value["i"])
    out.put((got, time.perf_counter()))
    conn.close()


def _child_consumers(spec: dict[str, Any]) -> dict[str, Any]:
    import multiprocessing as mp

    n, procs = spec["n"], spec["procs"]
    path = f"{spec['dir']}/c.db"
    q = _leaseq_queue(spec, "c.db")
    q.put_many([{"i": i} for i in range(n)])
    q.close()  # the same file for both: the raw consumers run leaseq's statements on it
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    if spec.get("who", "leaseq") == "leaseq":
        target: Any = _consume
        args: tuple[Any, ...] = (f"sqlite:///{path}", barrier, out, spec.get("work", 0.0))
    else:
        target, args = _raw_consume, (path, barrier, out)
    workers = [ctx.Process(target=target, args=args) for _ in range(procs)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    results = [out.get(timeout=300) for _ in workers]
    for w in workers:
        w.join()
    end = max(r[1] for r in results)
    seen = [i for r in results for i in r[0]]
    return {
        "rate": n / (end - start),
        "duplicates": len(seen) - len(set(seen)),
        "lost": n - len(set(seen)),
    }


def _latency_consumer(url: str, n: int, ready: Any, out: Any) -> None:
    import leaseq

    q = leaseq.Queue(url, name="bench")
    samples = []
    ready.set()
    for _ in range(n):
        lease = q.get(timeout=30)
        samples.append(time.time() - lease.value["t"])
        q.ack(lease)
    out.put(samples)
    q.close()


def _child_latency(spec: dict[str, Any]) -> dict[str, Any]:
    import multiprocessing as mp
    import random

    n = spec["n"]
    url = f"sqlite:///{spec['dir']}/lat.db"
    q = _leaseq_queue(spec, "lat.db")
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_latency_consumer, args=(url, n, ready, out))
    proc.start()
    ready.wait(30)
    time.sleep(0.3)  # let it block in get()
    for _ in range(n):
        time.sleep(random.uniform(0.002, 0.010))  # the consumer is idle between puts
        q.put({"t": time.time()})
    samples = sorted(out.get(timeout=60))
    proc.join()
    return {
        "p50": samples[len(samples) // 2],
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "max": samples[-1],
    }


def _idle_consumer(url: str, seconds: float, ready: Any) -> None:
    import leaseq

    q = leaseq.Queue(url, name="bench")
    ready.set()
    with contextlib.suppress(leaseq.Empty):
        q.get(timeout=seconds)
    q.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child_idle(spec: dict[str, Any]) -> dict[str, Any]:
    import multiprocessing as mp
    import sqlite3

    url = f"sqlite:///{spec['dir']}/idle.db"
    _leaseq_queue(spec, "idle.db").close()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_idle_consumer, args=(url, spec["seconds"] + 1.5, ready))
    proc.start()
    ready.wait(30)
    time.sleep(0.5)  # past its first (empty) claim: now it only waits
    assert proc.pid is not None
    conn = sqlite3.connect(f"{spec['dir']}/idle.db", isolation_level=None, timeout=0)
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    cpu0, wall0 = _cpu_seconds(proc.pid), time.monotonic()
    tries = busy = 0
    while time.monotonic() < wall0 + spec["seconds"]:
        tries += 1
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            busy += 1
        time.sleep(0.01)
    cpu = (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - wall0) * 100
    commits = conn.execute("PRAGMA data_version").fetchone()[0] - version
    proc.join()
    return {"cpu_pct": cpu, "commits": commits, "lock_busy": busy, "lock_tries": tries}


def _child_paired(spec: dict[str, Any]) -> dict[str, Any]:
    """leaseq and raw alternately in one process, batch by batch (the tightest
    comparison: same process, same moment, separate files)."""
    n, rounds, kind = spec["n"], spec["rounds"], spec["what"]
    q = _leaseq_queue(spec, "paired.db")
    raw = _Raw(spec)
    rates: dict[str, list[float]] = {"leaseq": [], "raw": []}

    def leaseq_batch() -> None:
        if kind == "put":
            for _ in range(n):
                q.put(VALUE)
        elif kind == "put_many":
            q.put_many([VALUE] * n)
        else:
            for _ in range(n):
                q.ack(q.get(block=False))

    def raw_batch() -> None:
        if kind == "put":
            raw.put(n)
        elif kind == "put_many":
            raw.put_many(n)
        else:
            raw.get_ack(n)

    for i in range(rounds):
        if kind == "getack":  # fill both outside the timing
            q.put_many([VALUE] * n)
            raw.put_many(n)
        order = [("leaseq", leaseq_batch), ("raw", raw_batch)]
        for name, batch in order if i % 2 else order[::-1]:  # alternate who goes first
            rates[name].append(_timed(n, batch))
    return {name: statistics.median(values) for name, values in rates.items()}


_CHILDREN = {
    "paired": _child_paired,
    "put": _child_rate,
    "put_many": _child_rate,
    "getack": _child_rate,
    "backlog": _child_backlog,
    "consumers": _child_consumers,
    "latency": _child_latency,
    "idle": _child_idle,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", required=True)
    spec = json.loads(parser.parse_args().child)
    print(json.dumps(_CHILDREN[spec["kind"]](spec)))


if __name__ == "__main__":
    main()
