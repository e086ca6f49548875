"""Fixtures for the postgresql:// store's own tests: a fresh schema per test, dropped after."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance._postgres import base_url, fresh_url


@pytest.fixture
def pg_url(request: Any) -> str:
    return fresh_url(request)


@pytest.fixture
def admin() -> Any:
    """An autocommit connection to the test server (outside any leaseq schema)."""
    import psycopg

    conn = psycopg.connect(base_url(), autocommit=True)
    yield conn
    conn.close()
