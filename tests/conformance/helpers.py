"""Small helpers shared by the conformance tests (no store-specific code here)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import leaseq

#: How long a helper thread is given to reach its blocking wait. Correctness of a
#: test never depends on it: if the thread is late, the call it makes simply finds
#: the event already there.
SETTLE = 0.05


def drain(q: Any) -> list[Any]:
    """Claim everything claimable now, in delivery order, acking each; return the values."""
    values = []
    while True:
        try:
            lease = q.get(block=False)
        except leaseq.Empty:
            return values
        values.append(lease.value)
        q.ack(lease)


def drain_keys(q: Any) -> list[str]:
    """Like ``drain`` but returns the keys."""
    keys = []
    while True:
        try:
            lease = q.get(block=False)
        except leaseq.Empty:
            return keys
        keys.append(lease.key)
        q.ack(lease)


class Background:
    """Run ``fn(*args, **kwargs)`` in a daemon thread and keep its result or error."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.started_at = 0.0
        self.finished_at = 0.0
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        self.started_at = time.monotonic()
        try:
            self.result = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test thread by join()
            self.error = exc
        finally:
            self.finished_at = time.monotonic()
            self.done.set()

    def join(self, timeout: float = 2.0) -> Any:
        """Wait for the call and return its result (re-raising its error)."""
        if not self.done.wait(timeout):
            raise AssertionError(f"background call still blocked after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def elapsed(self) -> float:
        return self.finished_at - self.started_at

    def assert_blocked(self, seconds: float = SETTLE) -> None:
        """Give the call ``seconds`` to finish; fail if it did (it should be waiting)."""
        if self.done.wait(seconds):
            raise AssertionError(f"expected a blocked call, it returned {self.result!r}")


def blocked(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Background:
    """Start ``fn`` in a thread and check that it is still waiting after a moment."""
    call = Background(fn, *args, **kwargs)
    call.assert_blocked()
    return call


def snapshot(q: Any, keys: list[str]) -> tuple[Any, ...]:
    """Everything the read API reports about ``keys`` (to prove reads change nothing)."""
    return (
        q.stats(),
        q.qsize(),
        q.empty(),
        q.full(),
        sorted(q.keys()),
        sorted(q.keys(leaseq.State.READY)),
        sorted(q.keys(leaseq.State.LEASED)),
        [q.peek(k) for k in keys],
        [q.contains(k) for k in keys],
        [k in q for k in keys],
        q.dead_letters(),
    )


class CountingStore:
    """Wraps a store object and counts calls of some primitives (to observe wake-ups).

    A queue built on it shares the wrapped store's data and notifier, so a put
    through any other queue of the store wakes its waiters.
    """

    COUNTED = frozenset({"claim", "claim_key", "put"})

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.calls: dict[str, int] = dict.fromkeys(self.COUNTED, 0)
        self.returned: dict[str, int] = dict.fromkeys(self.COUNTED, 0)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self.COUNTED:
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            try:
                return attr(*args, **kwargs)
            finally:
                with self._lock:
                    self.returned[name] += 1

        return counted

    def reset(self) -> None:
        with self._lock:
            self.calls = dict.fromkeys(self.COUNTED, 0)
            self.returned = dict.fromkeys(self.COUNTED, 0)
