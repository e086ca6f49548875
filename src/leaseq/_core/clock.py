"""The clock protocol: any zero-argument callable returning float seconds.

A clock may also offer ``subscribe(callback)``/``unsubscribe(callback)``:
waiters then recheck whenever it moves (``leaseq.testing.FakeClock`` does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SubscribableClock", "system_clock"]

Clock = Callable[[], float]


@runtime_checkable
class SubscribableClock(Protocol):
    """A clock that tells listeners when it moves (a test clock)."""

    def __call__(self) -> float: ...

    def subscribe(self, callback: Callable[[], None]) -> None: ...

    def unsubscribe(self, callback: Callable[[], None]) -> None: ...


#: Wall-clock epoch seconds: what durable stores record.
system_clock: Clock = time.time
