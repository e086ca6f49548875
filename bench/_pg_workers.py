"""Worker no-op throughput on PostgreSQL: ``leaseq.Worker`` beside pgqueuer and procrastinate.

Each contender gets a fresh schema, ``n`` no-op jobs queued before the clock
starts, ``concurrency`` handlers, async no-op handlers, and stops when the
queue is drained (pgqueuer ``mode=drain``, procrastinate ``wait=False``,
leaseq: when the last handler ran). Used by ``bench/postgres.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"


def _base() -> str:
    return os.environ.get("LEASEQ_POSTGRES_URL", DEFAULT_URL)


def _schema(create: bool) -> str:
    import psycopg

    name = f"lq_bench_{uuid.uuid4().hex[:10]}"
    if create:
        with psycopg.connect(_base(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
    return name


def _drop(schema: str) -> None:
    import psycopg

    with psycopg.connect(_base(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def leaseq_worker(n: int, concurrency: int) -> float:
    import leaseq
    from bench.worker import _worker_run

    schema = _schema(False)
    url = f"{_base()}?schema={schema}"
    try:
        q = leaseq.Queue(url, name="bench")
        q.put_many([{"i": i} for i in range(n)])
        q.close()
        aq = leaseq.AsyncQueue(url, name="bench")
        return _worker_run(aq, n, concurrency, True)
    finally:
        _drop(schema)


def pgqueuer_worker(n: int, concurrency: int) -> float:
    return asyncio.run(_pgqueuer(n, concurrency))


async def _pgqueuer(n: int, concurrency: int) -> float:
    import psycopg
    from pgqueuer import PgQueuer, PsycopgDriver, Queries
    from pgqueuer.types import QueueExecutionMode

    schema = _schema(True)
    try:
        conn = await psycopg.AsyncConnection.connect(
            _base(), autocommit=True, options=f"-c search_path={schema}"
        )
        driver = PsycopgDriver(conn)
        queries = Queries(driver)
        await queries.install()
        await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
        pgq = PgQueuer(driver)

        @pgq.entrypoint("noop")
        async def noop(job: Any) -> None:
            return None

        start = time.perf_counter()
        await pgq.run(
            mode=QueueExecutionMode.drain,
            batch_size=max(1, concurrency // 2),
            max_concurrent_tasks=concurrency,
        )
        elapsed = time.perf_counter() - start
        await conn.close()
        return n / elapsed
    finally:
        _drop(schema)


def procrastinate_worker(n: int, concurrency: int) -> float:
    return asyncio.run(_procrastinate(n, concurrency))


async def _procrastinate(n: int, concurrency: int) -> float:
    from procrastinate import App, PsycopgConnector

    schema = _schema(True)
    try:
        app = App(
            connector=PsycopgConnector(
                conninfo=_base(), kwargs={"options": f"-c search_path={schema}"}
            )
        )

        @app.task(name="noop")
        async def noop(i: int) -> None:
            return None

        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            await noop.batch_defer_async(*[{"i": i} for i in range(n)])
            start = time.perf_counter()
            await app.run_worker_async(concurrency=concurrency, wait=False)
            elapsed = time.perf_counter() - start
        return n / elapsed
    finally:
        _drop(schema)
