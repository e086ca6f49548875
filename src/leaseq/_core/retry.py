"""Retry policy, backoff, failure decisions and pacing (rate limit, circuit breaker).

Pure: no I/O, no sleeping, no threads. Time comes in as ``now`` arguments and
randomness as an optional ``random`` callable, so every rule is testable with
a fake clock. The worker asks these objects *what* to do; it does the waiting.
"""

from __future__ import annotations

import math
import random as _random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Backoff",
    "CircuitBreaker",
    "Decision",
    "RateLimiter",
    "Reject",
    "Retry",
    "RetryLater",
    "decide_failure",
    "format_error",
]

_ENGINE = ("leaseq/_async/worker.py", "leaseq/_sync/worker.py")
_TRACE_FRAMES = 5  # frames of traceback kept in a recorded error: enough to find the line


class RetryLater(Exception):
    """Raise from a handler to hand the message back for a new attempt after ``delay``."""

    def __init__(self, delay: float = 0.0, reason: str | None = None) -> None:
        _check_delay("RetryLater delay", delay)
        super().__init__(reason or f"retry later ({delay}s)")
        self.delay = float(delay)
        self.reason = reason


class Reject(Exception):
    """Raise from a handler to send the message to the dead letters at once (a
    permanent failure: retrying cannot help)."""

    def __init__(self, reason: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason


def _check_delay(name: str, seconds: object) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {seconds!r}")
    return float(seconds)


@dataclass(frozen=True)
class Backoff:
    """How long to wait before attempt ``n + 1`` after attempt ``n`` failed.

    ``Backoff.exponential(base, factor, cap, jitter)``: ``base * factor**(n-1)``
    capped at ``cap``; with jitter the delay is drawn from [d/2, d] so that
    many failing consumers do not retry in lockstep. ``Backoff.fixed(d)``.
    A plain callable ``attempt -> seconds`` and tenacity ``wait_*`` objects
    (called with a retry-state-like object) are accepted where a Backoff is.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: bool = True

    @classmethod
    def exponential(
        cls, base: float = 1.0, factor: float = 2.0, cap: float = 300.0, jitter: bool = True
    ) -> Backoff:
        _check_delay("base", base)
        _check_delay("cap", cap)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1:
            raise ValueError(f"factor must be a number >= 1, got {factor!r}")
        return cls(float(base), float(factor), float(cap), bool(jitter))

    @classmethod
    def fixed(cls, delay: float) -> Backoff:
        d = _check_delay("delay", delay)
        return cls(d, 1.0, d, False)

    def delay(self, attempt: int, rand: Callable[[], float] = _random.random) -> float:
        d = min(self.cap, self.base * self.factor ** max(attempt - 1, 0))
        if self.jitter and d > 0:
            d = d / 2 + rand() * d / 2
        return d


class _TenacityState:
    """Just enough of tenacity's RetryCallState for its ``wait_*`` objects."""

    def __init__(self, attempt: int) -> None:
        self.attempt_number = attempt
        self.outcome = None
        self.seconds_since_start = 0.0
        self.idle_for = 0.0


BackoffLike = Backoff | float | int | Callable[[int], float] | Any


def backoff_delay(backoff: BackoffLike, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` under any accepted backoff form."""
    if isinstance(backoff, Backoff):
        return backoff.delay(attempt)
    if isinstance(backoff, (int, float)) and not isinstance(backoff, bool):
        return _check_delay("backoff", backoff)
    if callable(backoff):
        if type(backoff).__module__.startswith("tenacity"):
            value = backoff(_TenacityState(attempt))  # type: ignore[arg-type]
        else:
            value = backoff(attempt)
        return _check_delay("backoff()", value)
    raise TypeError(f"backoff must be a Backoff, seconds or a callable, not {backoff!r}")


@dataclass(frozen=True)
class Retry:
    """A worker's retry policy.

    ``max_attempts``: attempts in all (None: the message's own max_attempts,
    else unbounded). ``backoff``: see ``Backoff``. ``retry_on``: exception
    types that are worth another attempt; any other exception is permanent
    and goes to the dead letters at once. A tenacity ``stop_after_attempt(n)``
    is accepted for ``max_attempts``.
    """

    max_attempts: int | None = 3
    backoff: BackoffLike = field(default_factory=Backoff)
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        n = self.max_attempts
        if n is not None and type(n).__module__.startswith("tenacity"):
            n = getattr(n, "max_attempt_number", None)
            object.__setattr__(self, "max_attempts", n)
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"max_attempts must be None or an int >= 1, got {n!r}")
        retry_on = self.retry_on
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
            object.__setattr__(self, "retry_on", retry_on)
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
            raise TypeError("retry_on must be exception types")
        backoff_delay(self.backoff, 1)  # fail now, not at the first failure


class Decision(NamedTuple):
    """What to do with a failed attempt: ``action`` is ``"retry"`` (release after
    ``delay``), ``"dead"`` (dead-letter) or ``"release"`` (hand back, let the
    queue's own max_attempts decide); ``error`` is the text to record."""

    action: str
    delay: float
    error: str


def format_error(exc: BaseException) -> str:
    """``"Type: message"`` plus the last frames of the traceback (where it broke)."""
    head = f"{type(exc).__name__}: {exc}"
    # The worker's own frames say nothing about the failure: keep the handler's.
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.endswith(_ENGINE)
    ]
    tb = frames[-_TRACE_FRAMES:]
    if not tb:
        return head
    lines = [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in tb]
    return head + "\nTraceback (most recent call last):\n" + "\n".join(lines)


def decide_failure(
    exc: BaseException,
    *,
    attempt: int,
    max_attempts: int | None,
    retry: Retry,
    on_failure: str,
) -> Decision:
    """The one rule for a failed attempt (see ``Decision``)."""
    if isinstance(exc, Reject):
        return Decision("dead", 0.0, f"Reject: {exc.reason}")
    if isinstance(exc, RetryLater):
        return Decision("retry", exc.delay, f"RetryLater: {exc}")
    error = format_error(exc)
    retryable = isinstance(exc, retry.retry_on)
    exhausted = max_attempts is not None and attempt >= max_attempts
    if retryable and not exhausted:
        return Decision("retry", backoff_delay(retry.backoff, attempt), error)
    if on_failure == "release":
        return Decision("release", backoff_delay(retry.backoff, attempt), error)
    return Decision("dead", 0.0, error)


class RateLimiter:
    """A token bucket: at most ``rate`` starts per second, bursts up to ``burst``.

    ``wait(now)`` returns 0.0 and takes a token when one is available, else
    the seconds until one will be (taking nothing).
    """

    def __init__(self, rate: float, burst: int = 1) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ValueError(f"rate must be a number > 0 (starts per second), got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an int >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._tokens = float(burst)
        self._at: float | None = None

    def wait(self, now: float) -> float:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def rate_limiter(rate_limit: Any, min_interval: float) -> RateLimiter | None:
    """Build the worker's limiter from ``rate_limit`` (starts per second, a
    ``(count, per_seconds)`` pair, or a RateLimiter) and ``min_interval``."""
    limiters: list[RateLimiter] = []
    if rate_limit is not None:
        if isinstance(rate_limit, RateLimiter):
            limiters.append(rate_limit)
        elif isinstance(rate_limit, tuple):
            count, per = rate_limit
            limiters.append(RateLimiter(count / _check_delay("rate_limit period", per), count))
        else:
            limiters.append(RateLimiter(rate_limit))
    if _check_delay("min_interval", min_interval) > 0:
        limiters.append(RateLimiter(1.0 / min_interval, 1))
    if not limiters:
        return None
    # The stricter one governs; two limits at once are rare enough to pick the slower rate.
    return min(limiters, key=lambda lim: lim.rate / lim.burst)


class CircuitBreaker:
    """Stop claiming after ``failure_threshold`` failures in a row; after
    ``reset_timeout`` seconds let one attempt through (half-open): a success
    closes the circuit, a failure opens it again.
    """

    def __init__(self, failure_threshold: int = 5, reset_timeout: float = 30.0) -> None:
        if (
            isinstance(failure_threshold, bool)
            or not isinstance(failure_threshold, int)
            or failure_threshold < 1
        ):
            raise ValueError(f"failure_threshold must be an int >= 1, got {failure_threshold!r}")
        self.failure_threshold = failure_threshold
        self.reset_timeout = _check_delay("reset_timeout", reset_timeout)
        self.failures = 0
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._probing else "open"

    def wait(self, now: float) -> float:
        """0.0 when a claim may go ahead now, else the seconds until it may."""
        if self.opened_at is None:
            return 0.0
        if self._probing:
            return self.reset_timeout  # one probe is out: wait for its verdict
        due = self.opened_at + self.reset_timeout
        if now >= due:
            self._probing = True
            return 0.0
        return due - now

    def no_probe(self) -> None:
        """The half-open probe found nothing to claim: the next claim probes instead."""
        self._probing = False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._probing = False

    def failure(self, now: float) -> None:
        self.failures += 1
        if self._probing or self.failures >= self.failure_threshold:
            self.opened_at = now
            self._probing = False
