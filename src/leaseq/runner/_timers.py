"""Callbacks at times of the runner's clock, on its event loop.

With an ordinary clock (``time.time``) a timer is a loop timer armed for the
remaining seconds. With a clock that announces its moves
(``leaseq.testing.FakeClock``) timers live in a heap and fire when the clock
is advanced past them, never by real time passing: tests of delays, retries,
timeouts and rate limits move the clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable
from typing import Any

from leaseq._core.clock import Clock, SubscribableClock

__all__ = ["Timer", "Timers"]


class Timer:
    """A cancellable pending callback."""

    __slots__ = ("args", "callback", "cancelled", "handle", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False
        self.handle: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()
        self.args = ()


class Timers:
    """Timers keyed on the clock's time, bound to one event loop."""

    def __init__(self, clock: Clock, loop: asyncio.AbstractEventLoop) -> None:
        self._clock = clock
        self._loop = loop
        self._fake = isinstance(clock, SubscribableClock)
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        if self._fake:
            clock.subscribe(self._moved)  # type: ignore[attr-defined]

    def at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Call ``callback(*args)`` on the loop once the clock reads ``when`` or later."""
        timer = Timer(when, callback, args)
        if not self._fake:
            delay = max(0.0, when - self._clock())
            timer.handle = self._loop.call_later(delay, self._run, timer)
            return timer
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        if when <= self._clock():
            self._loop.call_soon(self._fire)
        return timer

    def _run(self, timer: Timer) -> None:
        if timer.cancelled:
            return
        remaining = timer.when - self._clock()
        if remaining > 0:  # the wall clock lagged the loop's monotonic timer
            timer.handle = self._loop.call_later(remaining, self._run, timer)
            return
        timer.cancelled = True
        timer.callback(*timer.args)

    def _moved(self) -> None:
        # Called in whatever thread moved the clock.
        if not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        now = self._clock()
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback(*timer.args)

    def close(self) -> None:
        """Stop listening to the clock and forget pending timers."""
        if self._fake:
            self._clock.unsubscribe(self._moved)  # type: ignore[attr-defined]
        for _, _, timer in self._heap:
            timer.cancel()
        self._heap.clear()
