"""Reaching the Redis server the tests use (``LEASEQ_REDIS_URL``).

Unreachable: the test is skipped with how to start one, unless
``LEASEQ_REQUIRE_SERVICES=1`` (CI), where it fails.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

DEFAULT_URL = "redis://127.0.0.1:6379/0"
HOW = (
    "start one with `redis-server --port 6379` (or `docker run -p 6379:6379 redis:7`) "
    "or point LEASEQ_REDIS_URL at one"
)


def base_url() -> str:
    return os.environ.get("LEASEQ_REDIS_URL", DEFAULT_URL)


def client() -> Any:
    """A raw redis-py client on the test server, or skip/fail when unreachable."""
    try:
        import redis
    except ModuleNotFoundError:
        _unavailable("redis-py is not installed (pip install 'leaseq[redis]')")
    c = redis.Redis.from_url(base_url(), socket_connect_timeout=2)
    try:
        c.ping()
    except redis.RedisError as exc:
        c.close()
        _unavailable(f"Redis at {base_url()} is unreachable ({exc}); {HOW}")
    return c


def _unavailable(reason: str) -> Any:
    if os.environ.get("LEASEQ_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def delete_prefix(c: Any, prefix: str) -> None:
    keys = list(c.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        c.delete(*keys[i : i + 500])


def with_prefix(url: str, prefix: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


def redis_url_for_test(request: Any) -> str:
    """A store URL with a fresh prefix; the prefix's keys are deleted after the test."""
    c = client()
    prefix = f"leaseq-test-{uuid.uuid4().hex[:12]}:"

    def cleanup() -> None:
        try:
            delete_prefix(c, prefix)
        finally:
            c.close()

    request.addfinalizer(cleanup)
    return with_prefix(base_url(), prefix)
