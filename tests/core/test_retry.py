"""The pure retry rules: backoff, failure decisions, rate limiter, circuit breaker."""

from __future__ import annotations

import pytest

from leaseq._core.retry import (
    Backoff,
    CircuitBreaker,
    RateLimiter,
    Reject,
    Retry,
    RetryLater,
    backoff_delay,
    decide_failure,
    format_error,
    rate_limiter,
)
from leaseq.testing import FakeClock


def test_exponential_backoff_grows_and_caps():
    b = Backoff.exponential(base=1, factor=2, cap=10, jitter=False)
    assert [b.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_jitter_stays_within_half_to_full():
    b = Backoff.exponential(base=8, factor=1, cap=8, jitter=True)
    assert b.delay(1, rand=lambda: 0.0) == 4
    assert b.delay(1, rand=lambda: 1.0) == 8


def test_fixed_callable_and_number_backoffs():
    assert backoff_delay(Backoff.fixed(3), 5) == 3
    assert backoff_delay(2.5, 1) == 2.5
    assert backoff_delay(lambda n: n * 10, 3) == 30
    with pytest.raises(ValueError):
        backoff_delay(lambda n: -1, 1)
    with pytest.raises(TypeError):
        backoff_delay("soon", 1)


def test_tenacity_wait_objects_are_called_with_a_retry_state():
    class wait_fixed:
        __module__ = "tenacity.wait"

        def __call__(self, state):
            return 1.5 * state.attempt_number

    assert backoff_delay(wait_fixed(), 2) == 3.0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_retry_rejects_bad_max_attempts(bad):
    with pytest.raises(ValueError):
        Retry(max_attempts=bad)


def test_retry_on_must_be_exception_types():
    with pytest.raises(TypeError):
        Retry(retry_on=("ValueError",))
    assert Retry(retry_on=KeyError).retry_on == (KeyError,)


def _decide(exc, attempt, max_attempts=3, on_failure="dead_letter", retry=None):
    retry = retry or Retry(max_attempts=max_attempts, backoff=Backoff.fixed(7))
    return decide_failure(
        exc, attempt=attempt, max_attempts=max_attempts, retry=retry, on_failure=on_failure
    )


def test_decisions():
    assert _decide(ValueError("x"), 1)[:2] == ("retry", 7)
    assert _decide(ValueError("x"), 3)[:2] == ("dead", 0)
    assert _decide(ValueError("x"), 3, on_failure="release")[:2] == ("release", 7)
    assert _decide(Reject("bad"), 1) == ("dead", 0.0, "Reject: bad")
    assert _decide(RetryLater(42), 3)[:2] == ("retry", 42)  # the handler asked for it
    permanent = Retry(max_attempts=5, retry_on=(OSError,))
    assert _decide(KeyError("k"), 1, 5, retry=permanent).action == "dead"


def test_format_error_names_type_message_and_frames():
    def boom():
        raise ValueError("broken")

    try:
        boom()
    except ValueError as exc:
        text = format_error(exc)
    assert text.startswith("ValueError: broken\nTraceback")
    assert "in boom" in text


def test_rate_limiter_with_a_fake_clock():
    clock = FakeClock()
    lim = RateLimiter(rate=2, burst=2)  # 2 per second
    assert lim.wait(clock()) == 0 and lim.wait(clock()) == 0
    assert lim.wait(clock()) == pytest.approx(0.5)
    clock.advance(0.5)
    assert lim.wait(clock()) == 0
    assert lim.wait(clock()) == pytest.approx(0.5)


def test_rate_limit_forms_and_min_interval():
    assert rate_limiter(None, 0) is None
    assert rate_limiter((10, 60), 0).rate == pytest.approx(10 / 60)
    lim = rate_limiter(None, 2.0)
    assert lim.wait(100.0) == 0 and lim.wait(100.0) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        rate_limiter(0, 0)


def test_circuit_breaker_opens_half_opens_and_closes():
    clock = FakeClock()
    cb = CircuitBreaker(failure_threshold=2, reset_timeout=30)
    assert cb.wait(clock()) == 0 and cb.state == "closed"
    cb.failure(clock())
    assert cb.state == "closed"
    cb.failure(clock())
    assert cb.state == "open" and cb.wait(clock()) == pytest.approx(30)
    clock.advance(30)
    assert cb.wait(clock()) == 0 and cb.state == "half_open"  # one probe goes through
    assert cb.wait(clock()) > 0  # and only one
    cb.failure(clock())
    assert cb.state == "open" and cb.wait(clock()) == pytest.approx(30)
    clock.advance(30)
    assert cb.wait(clock()) == 0
    cb.success()
    assert cb.state == "closed" and cb.failures == 0


def test_breaker_probe_that_found_nothing_is_given_back():
    clock = FakeClock()
    cb = CircuitBreaker(failure_threshold=1, reset_timeout=5)
    cb.failure(clock())
    clock.advance(5)
    assert cb.wait(clock()) == 0
    cb.no_probe()
    assert cb.wait(clock()) == 0
