"""``leaseq.testing.FakeClock``: a clock that moves only when told to."""

from __future__ import annotations

import threading

import pytest

from leaseq._core.clock import SubscribableClock, system_clock
from leaseq.testing import FakeClock


def test_starts_at_the_documented_default() -> None:
    assert FakeClock()() == 1_700_000_000.0
    assert FakeClock(5)() == 5.0
    assert isinstance(FakeClock(5)(), float)


def test_advance_moves_and_returns_the_new_time() -> None:
    clock = FakeClock(100.0)
    assert clock.advance(2.5) == 102.5
    assert clock() == 102.5
    assert clock.time() == 102.5
    assert clock.advance(0) == 102.5


def test_never_moves_backwards() -> None:
    clock = FakeClock(100.0)
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert clock.set(90.0) == 100.0
    assert clock.set(150.0) == 150.0
    assert clock() == 150.0


def test_listeners_run_after_every_move_until_unsubscribed() -> None:
    clock = FakeClock(0.0)
    seen: list[float] = []

    def listener() -> None:
        seen.append(clock())

    clock.subscribe(listener)
    clock.advance(1)
    clock.set(5)
    clock.unsubscribe(listener)
    clock.advance(1)
    clock.unsubscribe(listener)  # unknown callbacks are ignored
    assert seen == [1.0, 5.0]


def test_advance_from_many_threads_loses_no_time() -> None:
    clock = FakeClock(0.0)

    def work() -> None:
        for _ in range(1000):
            clock.advance(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock() == 8000.0


def test_fake_clock_is_a_subscribable_clock() -> None:
    assert isinstance(FakeClock(), SubscribableClock)
    assert not isinstance(system_clock, SubscribableClock)
    assert isinstance(system_clock(), float)
