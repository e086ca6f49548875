"""Helpers for the task runner's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from leaseq.testing import FakeClock


async def until(predicate: Callable[[], bool], *, turns: int = 10_000) -> None:
    """Let the event loop run until ``predicate()`` holds (no sleeping on time)."""
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def until_threads(predicate: Callable[[], bool], *, seconds: float = 5.0) -> None:
    """Like ``until`` for conditions that depend on real threads finishing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.001)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
