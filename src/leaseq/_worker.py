"""What both worker engines share that is not waiting: settings, counters, held leases.

``leaseq/_async/worker.py`` (``AsyncEngine``) is the one written source of the
worker loop; ``leaseq/_sync/worker.py`` (``Engine``, threads) is generated
from it. Failure decisions live in ``leaseq._core.retry``.
"""

from __future__ import annotations

import inspect
import logging
import threading
from dataclasses import dataclass
from typing import Any

from leaseq._core import rules
from leaseq._core.model import Lease
from leaseq._core.retry import CircuitBreaker, RateLimiter, Retry, rate_limiter

__all__ = ["Config", "Held", "WorkerStats", "log"]  # plus the counter indexes

log = logging.getLogger("leaseq.worker")

_ON_FAILURE = ("dead_letter", "release")


@dataclass(frozen=True)
class Config:
    """A worker's validated options (see ``leaseq.Worker``)."""

    handler: Any
    is_async: bool
    concurrency: int
    retry: Retry
    lease_timeout: float
    heartbeat: bool
    limiter: RateLimiter | None
    breaker: CircuitBreaker | None
    on_failure: str
    idempotent: bool
    owner: str | None
    pass_lease: bool
    shutdown_timeout: float
    poll_interval: float


def config(
    handler: Any,
    *,
    queue_lease_timeout: float,
    concurrency: int,
    retry: Retry | None,
    lease_timeout: float | None,
    heartbeat: bool,
    min_interval: float,
    rate_limit: Any,
    circuit_breaker: CircuitBreaker | None,
    on_failure: str,
    idempotent: bool,
    owner: str | None,
    pass_lease: bool,
    shutdown_timeout: float,
    poll_interval: float,
) -> Config:
    """Validate a worker's options; errors say which option and what is allowed."""
    if not callable(handler):
        raise TypeError(f"handler must be a callable, not {type(handler).__name__}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    if retry is None:
        retry = Retry()
    elif not isinstance(retry, Retry):
        raise TypeError(f"retry must be a leaseq.Retry, not {type(retry).__name__}")
    if on_failure not in _ON_FAILURE:
        raise ValueError(f"on_failure must be 'dead_letter' or 'release', got {on_failure!r}")
    if circuit_breaker is not None and not isinstance(circuit_breaker, CircuitBreaker):
        raise TypeError("circuit_breaker must be a leaseq.CircuitBreaker")
    if owner is not None and not isinstance(owner, str):
        raise TypeError(f"owner must be a str, not {type(owner).__name__}")
    lt = (
        queue_lease_timeout
        if lease_timeout is None
        else rules.check_seconds("lease_timeout", lease_timeout, positive=True)
    )
    return Config(
        handler=handler,
        is_async=_is_async(handler),
        concurrency=concurrency,
        retry=retry,
        lease_timeout=lt,
        heartbeat=bool(heartbeat),
        limiter=rate_limiter(rate_limit, min_interval),
        breaker=circuit_breaker,
        on_failure=on_failure,
        idempotent=bool(idempotent),
        owner=owner,
        pass_lease=bool(pass_lease),
        shutdown_timeout=rules.check_seconds("shutdown_timeout", shutdown_timeout),
        poll_interval=rules.check_seconds("poll_interval", poll_interval, positive=True),
    )


def _is_async(handler: Any) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object with async __call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


_FIELDS = ("succeeded", "failed", "retried", "dead_lettered", "skipped", "lost")
SUCCEEDED, FAILED, RETRIED, DEAD_LETTERED, SKIPPED, LOST = range(len(_FIELDS))


class WorkerStats:
    """Counters of one worker, safe to read from any thread while it runs.

    ``succeeded`` handler returned and the ack held; ``failed`` handler raised;
    ``retried`` failures handed back for another attempt; ``dead_lettered``
    messages the worker sent to (or saw go to) the dead letters; ``skipped``
    idempotent duplicates acked without running; ``lost`` results dropped
    because the lease no longer held; ``running`` handlers running now.
    """

    def __init__(self) -> None:
        # One counter row per slot (thread or task): each slot writes only its own
        # row, so counting takes no lock; readers add the rows up.
        self._rows: list[list[int]] = []
        self._lock = threading.Lock()
        self._held: dict[str, Any] = {}

    def row(self) -> list[int]:
        """A new slot's own counter row."""
        row = [0] * len(_FIELDS)
        with self._lock:
            self._rows.append(row)
        return row

    def watch(self, held: dict[str, Any]) -> None:
        self._held = held

    def _sum(self, index: int) -> int:
        with self._lock:
            rows = list(self._rows)
        return sum(r[index] for r in rows)

    @property
    def succeeded(self) -> int:
        return self._sum(SUCCEEDED)

    @property
    def failed(self) -> int:
        return self._sum(FAILED)

    @property
    def retried(self) -> int:
        return self._sum(RETRIED)

    @property
    def dead_lettered(self) -> int:
        return self._sum(DEAD_LETTERED)

    @property
    def skipped(self) -> int:
        return self._sum(SKIPPED)

    @property
    def lost(self) -> int:
        return self._sum(LOST)

    @property
    def running(self) -> int:
        return len(self._held)

    @property
    def done(self) -> int:
        """Messages finished one way or another (succeeded, dead-lettered, skipped)."""
        return self.succeeded + self.dead_lettered + self.skipped

    def as_dict(self) -> dict[str, int]:
        out = {name: self._sum(i) for i, name in enumerate(_FIELDS)}
        out["running"] = self.running
        return out

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"WorkerStats({body})"


class Held:
    """A lease a handler is working under; the heartbeat swaps in extended leases."""

    __slots__ = ("finished", "lease", "lost")

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.lost = False
        self.finished = False
