"""The stores the conformance suite runs against.

Each entry is a name and a factory ``(tmp_path, request) -> store URL``. A new
store adds one entry here and nothing else: a store that needs a special case
in a shared test is a bug in the store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._postgres import postgres_factory

StoreFactory = Callable[[Path, Any], str]


def _memory(tmp_path: Path, request: Any) -> str:
    # A named in-process store, so that several queue objects in one test share it;
    # a fresh name per test (named stores live as long as the process).
    return f"memory://conformance-{uuid.uuid4().hex}"


def _redis(tmp_path: Path, request: Any) -> str:
    # A fresh key prefix per test on the shared server; its keys are deleted after
    # the test (never FLUSHALL/FLUSHDB: others use the server too).
    from tests.stores.redis.service import redis_url_for_test

    return redis_url_for_test(request)


STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": lambda tmp_path, request: f"sqlite:///{tmp_path}/q.db",
    "file": lambda tmp_path, request: f"file://{tmp_path}/q",
    "postgres": postgres_factory,
    "redis": _redis,
}
