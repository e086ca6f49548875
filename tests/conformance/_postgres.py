"""The conformance suite's ``postgresql://`` factory: a fresh schema per test, dropped after.

``LEASEQ_POSTGRES_URL`` names the server (default ``postgresql://root@127.0.0.1:5432/test``).
When it is unreachable the tests skip with how to start one, unless
``LEASEQ_REQUIRE_SERVICES=1``: then they fail.
"""

from __future__ import annotations

import os
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"
HOW_TO_START = (
    "PostgreSQL is not reachable at {url}: start one (e.g. `pg_ctlcluster 15 main start`, or "
    "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres`) and set "
    "LEASEQ_POSTGRES_URL; LEASEQ_REQUIRE_SERVICES=1 makes this a failure"
)


def base_url() -> str:
    return os.environ.get("LEASEQ_POSTGRES_URL", DEFAULT_URL)


@cache
def _unreachable() -> str | None:
    try:
        import psycopg
    except ModuleNotFoundError:
        return "psycopg is not installed: pip install 'leaseq[postgres]'"
    try:
        with psycopg.connect(base_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{HOW_TO_START.format(url=base_url())} ({exc})"
    return None


def require_server() -> None:
    """Skip (or fail with LEASEQ_REQUIRE_SERVICES=1) when the server is unreachable."""
    why = _unreachable()
    if why is None:
        return
    if os.environ.get("LEASEQ_REQUIRE_SERVICES") == "1":
        pytest.fail(why)
    pytest.skip(why)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(base_url(), autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def fresh_url(request: Any) -> str:
    """A URL with a new schema, dropped when the test ends."""
    require_server()
    schema = f"lq_test_{uuid.uuid4().hex[:16]}"
    request.addfinalizer(lambda: drop_schema(schema))
    sep = "&" if "?" in base_url() else "?"
    # The tests never crash the server: skip the fsync per commit (the machine is shared).
    return f"{base_url()}{sep}schema={schema}&synchronous_commit=off"


def postgres_factory(tmp_path: Path, request: Any) -> str:
    return fresh_url(request)
