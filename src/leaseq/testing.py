"""Test helpers: a fake clock that moves only when told to.

Queues read message times (delays, ``at``, lease expiry) from their clock;
``timeout=`` arguments stay real waiting time. A waiter blocked on a queue
rechecks whenever its fake clock advances, so tests never sleep for expiry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["FakeClock"]


class FakeClock:
    """A clock for tests: ``clock()`` returns the time, ``clock.advance(s)`` moves it.

    Thread-safe. Listeners added with ``subscribe`` run after every move, in
    the thread that moved the clock.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self._now

    def time(self) -> float:
        """The current fake time (same as calling the clock)."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (>= 0) and wake listeners; return the new time."""
        if seconds < 0:
            raise ValueError("a FakeClock only moves forward; advance() takes seconds >= 0")
        with self._lock:
            self._now += seconds
            now = self._now
            listeners = list(self._listeners)
        for callback in listeners:
            callback()
        return now

    def set(self, when: float) -> float:
        """Move the clock to ``when`` (not backwards) and wake listeners."""
        return self.advance(max(0.0, when - self._now))

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every move of the clock."""
        with self._lock:
            self._listeners.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback``; unknown callbacks are ignored."""
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
