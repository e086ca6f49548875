"""Fixtures that parametrize every conformance test over every store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import leaseq
from leaseq.testing import FakeClock

from .stores import STORE_FACTORIES


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store_url(request: Any, tmp_path: Any) -> str:
    return STORE_FACTORIES[request.param](tmp_path, request)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_queue(store_url: str, clock: FakeClock) -> Iterator[Any]:
    """Open sync queues on the store under test (fake clock by default); closes them after."""
    opened: list[leaseq.Queue] = []

    def make(**options: Any) -> leaseq.Queue:
        options.setdefault("clock", clock)
        q = leaseq.Queue(store_url, **options)
        opened.append(q)
        return q

    yield make
    for q in opened:
        q.close()


@pytest.fixture
async def make_async_queue(store_url: str, clock: FakeClock) -> AsyncIterator[Any]:
    opened: list[leaseq.AsyncQueue] = []

    def make(**options: Any) -> leaseq.AsyncQueue:
        options.setdefault("clock", clock)
        q = leaseq.AsyncQueue(store_url, **options)
        opened.append(q)
        return q

    yield make
    for q in opened:
        await q.close()
