"""Worker tests run on every store of the conformance suite (memory, sqlite, file, and the
network stores when they are registered there)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import leaseq
from tests.conformance.conftest import clock, store_url

# The conformance suite's store parametrization and fake clock, reused as they are.
__all__ = ["clock", "store_url"]


@pytest.fixture
def make_queue(store_url: str) -> Iterator[Callable[..., leaseq.Queue]]:
    opened: list[leaseq.Queue] = []

    def make(**options: Any) -> leaseq.Queue:
        q = leaseq.Queue(store_url, **options)
        opened.append(q)
        return q

    yield make
    for q in opened:
        q.close()


class Running:
    """A worker running on a background thread; ``stop()`` joins it."""

    def __init__(self, worker: leaseq.Worker) -> None:
        self.worker = worker
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run(handle_signals=False)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self, timeout: float = 30.0) -> leaseq.WorkerStats:
        self.worker.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error
        return self.worker.stats


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition (what a worker thread did) until it holds or fail."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


@pytest.fixture
def start() -> Iterator[Callable[[leaseq.Worker], Running]]:
    running: list[Running] = []

    def go(worker: leaseq.Worker) -> Running:
        r = Running(worker)
        running.append(r)
        return r

    yield go
    for r in running:
        r.worker.stop()
        r.thread.join(30)
