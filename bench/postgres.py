"""PostgreSQL scenarios: leaseq ``postgresql://`` beside a raw SKIP LOCKED ceiling.

The server is ``LEASEQ_POSTGRES_URL`` (default ``postgresql://root@127.0.0.1:5432/test``);
every round runs on a fresh schema, dropped afterwards. Each measurement runs
in fresh child processes (``python -m bench.postgres --child SPEC``) that
start together on a signal, so contenders never share connections or caches.
Rounds interleave the contenders; tables show medians.

Ceiling ("raw"): the statements leaseq runs on its fast paths, from
``queries.sql`` as they are (put: one autocommit INSERT ... ON CONFLICT;
get: one autocommit UPDATE ... FOR UPDATE SKIP LOCKED RETURNING; ack: one
autocommit DELETE with the token in its WHERE clause), executed by a bare
psycopg connection with nothing around them.

Worker no-op throughput: ``leaseq.Worker`` over ``AsyncQueue`` beside
pgqueuer and procrastinate (``pip install pgqueuer procrastinate``), each on a
fresh schema of the same server, async no-op handlers, concurrency 10, jobs
queued before the clock starts (``bench/_pg_workers.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Row, Table, interleave, print_table

ROOT = Path(__file__).resolve().parent.parent
VALUE = {"to": "user@example.com", "n": 1}
DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"


def _base_url() -> str:
    return os.environ.get("LEASEQ_POSTGRES_URL", DEFAULT_URL)


# -- the parent ----------------------------------------------------------------------------
def _new_schema(sync: str = "on") -> tuple[str, str]:
    """A fresh, migrated schema; returns (schema, leaseq URL)."""
    import leaseq

    schema = f"lq_bench_{uuid.uuid4().hex[:10]}"
    url = f"{_base_url()}?schema={schema}&synchronous_commit={sync}"
    q = leaseq.Queue(url)
    q.store.migrate()
    q.close()
    return schema, url


def _drop(schema: str) -> None:
    import psycopg

    with psycopg.connect(_base_url(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _cycles(kind: str, clients: int, n: int, sync: str) -> float:
    """Run ``clients`` processes of ``n`` put+get+ack cycles each; return cycles/s."""
    schema, url = _new_schema(sync)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    try:
        with tempfile.TemporaryDirectory(prefix="leaseq-pgbench-") as tmp:
            go = Path(tmp) / "go"
            procs = []
            for i in range(clients):
                spec = {
                    "kind": kind,
                    "url": url,
                    "schema": schema,
                    "n": n,
                    "go": str(go),
                    "sync": sync,
                }
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.postgres", "--child", json.dumps(spec)],
                        env=env,
                        stdout=subprocess.PIPE,
                        text=True,
                        cwd=ROOT,
                    )
                )
                _ = i
            # Children connect and warm up, then report "ready" on stdout.
            for p in procs:
                assert p.stdout is not None
                line = p.stdout.readline().strip()
                if line != "ready":
                    raise RuntimeError(f"bench child failed to start: {line!r}")
            start = time.perf_counter()
            go.write_text("go")
            ends = []
            for p in procs:
                out, _ = p.communicate(timeout=600)
                ends.append(json.loads(out.strip().splitlines()[-1])["end"])
            elapsed = max(ends) - start
    finally:
        _drop(schema)
    return clients * n / elapsed


def _latency(n: int, sync: str) -> dict[str, float]:
    """Put -> get latency with the consumer blocked in another process (LISTEN/NOTIFY)."""
    import leaseq

    schema, url = _new_schema(sync)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    spec = {"kind": "latency", "url": url, "schema": schema, "n": n, "go": ""}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.postgres", "--child", json.dumps(spec)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        q = leaseq.Queue(url)
        time.sleep(0.2)
        for _ in range(n):
            q.put(time.time())
            time.sleep(0.02)  # the consumer is blocked again by the next put
        out, _ = proc.communicate(timeout=120)
        q.close()
        lat = sorted(json.loads(out.strip().splitlines()[-1])["lat"])
    finally:
        _drop(schema)
    return {"p50": lat[len(lat) // 2] * 1000, "p90": lat[int(len(lat) * 0.9)] * 1000}


def run(args: argparse.Namespace) -> None:
    try:
        import psycopg

        psycopg.connect(_base_url(), connect_timeout=3).close()
    except Exception as exc:  # the whole topic needs a server
        print(f"(postgres: no server at {_base_url()}: {exc}; set LEASEQ_POSTGRES_URL)")
        return
    rounds = max(1, args.rounds)
    n = 200 if args.quick else 1000
    # synchronous_commit=on (the server default) pays an fsync per commit: on a
    # shared disk that dominates; off shows what leaseq itself costs.
    for sync in ("on", "off"):
        for clients in (1, 4):
            per = max(50, n // clients)
            medians = interleave(
                {
                    "raw": lambda c=clients, k=per, s=sync: _cycles("raw", c, k, s),
                    "leaseq": lambda c=clients, k=per, s=sync: _cycles("leaseq", c, k, s),
                },
                rounds,
            )
            title = f"put+get+ack cycles, {clients} client process(es), synchronous_commit={sync}"
            table = Table(title, baseline="raw")
            table.rows.append(
                Row("raw", medians["raw"], unit="cycles/s", note="SKIP LOCKED ceiling")
            )
            table.rows.append(
                Row("leaseq", medians["leaseq"], unit="cycles/s", note="acceptance: >= 0.8")
            )
            print_table(table)
    for sync in ("on", "off"):
        lat = [_latency(30 if args.quick else 100, sync) for _ in range(min(rounds, 3))]
        table = Table(
            f"put-to-get latency, consumer blocked in another process, synchronous_commit={sync}",
            baseline="p50",
        )
        table.higher_is_better = False
        p50 = statistics.median(r["p50"] for r in lat)
        p90 = statistics.median(r["p90"] for r in lat)
        table.rows.append(Row("p50", p50, unit="ms", note="acceptance: <= 10 ms"))
        table.rows.append(Row("p90", p90, unit="ms"))
        print_table(table)
    _worker_table(args, rounds)


def _worker_table(args: argparse.Namespace, rounds: int) -> None:
    """Worker no-op throughput beside pgqueuer and procrastinate (same server, same run)."""
    from bench import _pg_workers as W

    n = 300 if args.quick else 2000
    contenders = {"leaseq": W.leaseq_worker}
    skipped: dict[str, str] = {}
    for name, module, fn in (
        ("pgqueuer", "pgqueuer", W.pgqueuer_worker),
        ("procrastinate", "procrastinate", W.procrastinate_worker),
    ):
        try:
            __import__(module)
        except ModuleNotFoundError:
            skipped[name] = f"pip install {module}"
            continue
        contenders[name] = fn
    medians = interleave({name: (lambda f=fn: f(n, 10)) for name, fn in contenders.items()}, rounds)
    table = Table("worker no-op throughput, concurrency 10, async handlers", baseline="leaseq")
    for name in ("leaseq", "pgqueuer", "procrastinate"):
        if name in medians:
            note = "acceptance: leaseq >= each peer" if name == "leaseq" else ""
            table.rows.append(Row(name, medians[name], unit="jobs/s", note=note))
        else:
            table.rows.append(Row(name, 0.0, unit="jobs/s", note=f"skipped: {skipped[name]}"))
    print_table(table)


# -- the children --------------------------------------------------------------------------
def _wait_go(path: str) -> None:
    print("ready", flush=True)
    while not os.path.exists(path):
        time.sleep(0.001)


def _child_leaseq(spec: dict[str, Any]) -> None:
    import leaseq

    q = leaseq.Queue(spec["url"])
    q.put(VALUE)
    q.ack(q.get())
    _wait_go(spec["go"])
    for _ in range(spec["n"]):
        q.put(VALUE)
        q.ack(q.get())
    print(json.dumps({"end": time.perf_counter()}))
    q.close()


def _child_raw(spec: dict[str, Any]) -> None:
    import psycopg

    from leaseq._core.ids import new_id, new_token
    from leaseq.serializers import get_codec
    from leaseq.stores.postgres._sql import qualified

    codec = get_codec(None)
    Q = qualified(spec["schema"])  # exactly the statements leaseq runs
    conn = psycopg.connect(
        _base_url(),
        autocommit=True,
        options=f"-c search_path={spec['schema']} -c synchronous_commit={spec['sync']}",
        application_name="leaseq-raw",
    )
    chan = f"leaseq_{spec['schema']}"

    def cycle() -> None:
        mid = new_id()
        conn.execute(
            Q.INSERT,
            {
                "now": None,
                "at": None,
                "delay": 0.0,
                "id": mid,
                "queue": "default",
                "key": mid,
                "value": codec.pack(VALUE),
                "priority": 0,
                "max_attempts": None,
                "seq": None,
                "chan": chan,
                "payload": "default\nraw",
            },
        ).fetchone()
        row = None
        while row is None or row[0] is None:  # NULLs: another client took ours; again
            row = claim()
        codec.unpack(row[2])
        got = conn.execute(
            Q.ACK, {"id": row[0], "queue": "default", "token": row[12], "now": None}
        ).fetchone()
        assert got is not None

    def claim() -> Any:
        return conn.execute(
            Q.CLAIM,
            {
                "now": None,
                "seq": None,
                "queue": "default",
                "limit": 1,
                "fast": True,
                "tokens": [new_token()],
                "owner": None,
                "timeout": 30.0,
            },
        ).fetchone()

    cycle()
    _wait_go(spec["go"])
    for _ in range(spec["n"]):
        cycle()
    print(json.dumps({"end": time.perf_counter()}))
    conn.close()


def _child_latency(spec: dict[str, Any]) -> None:
    import leaseq

    q = leaseq.Queue(spec["url"])
    q.put(0.0)
    q.ack(q.get())
    print("ready", flush=True)
    lat = []
    for _ in range(spec["n"]):
        lease = q.get(timeout=30)
        lat.append(time.time() - lease.value)
        q.ack(lease)
    print(json.dumps({"lat": lat}))
    q.close()


def _child_main(spec: dict[str, Any]) -> None:
    {"leaseq": _child_leaseq, "raw": _child_raw, "latency": _child_latency}[spec["kind"]](spec)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child_main(json.loads(sys.argv[2]))
    else:
        print("run through `python -m bench postgres`", file=sys.stderr)
        sys.exit(2)
