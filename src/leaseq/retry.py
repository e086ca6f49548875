"""Persistent retries: attempt counts that survive process restarts.

``@persistent_retry(key_fn=key_from_argument("job_id"), max_attempts=3)``
retries a function in-process like tenacity, but counts its attempts in a
leaseq store, so a process that crashes or restarts goes on counting where
the last one stopped, and a key that used up its budget raises
``PersistentRetryExhausted`` *before* the function runs again.

The record is not a second storage engine: each key is one message of an
ordinary queue (default ``leaseq.retries`` in ``sqlite:///./leaseq.db``).
Claiming it counts an attempt (the store's own attempt counter, so a crash
mid-call still counts); success acks it (the record is gone); exhaustion
dead-letters it and records a failed outcome in the results ledger, which is
what later calls check. ``reset(key)`` clears that verdict.

tenacity is not needed; its ``stop_after_attempt`` and ``wait_*`` objects are
accepted for ``max_attempts`` and ``backoff``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from leaseq._core.retry import Backoff, BackoffLike, Retry, backoff_delay, format_error
from leaseq._sync.queue import Queue
from leaseq.errors import LeaseqError

__all__ = [
    "Backoff",
    "PersistentAsyncRetrying",
    "PersistentRetryExhausted",
    "PersistentRetrying",
    "RetryRecord",
    "key_from_argument",
    "key_from_attr",
    "persistent_async_retry",
    "persistent_retry",
]

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_STORE = "sqlite:///./leaseq.db"
DEFAULT_QUEUE = "leaseq.retries"
_EXHAUSTED = "exhausted after {n} attempts: "


class PersistentRetryExhausted(LeaseqError):
    """The key used up its attempts (in this process or an earlier one)."""

    def __init__(self, key: str, attempts: int) -> None:
        super().__init__(
            f"retry key {key!r} is exhausted after {attempts} attempts; "
            "call reset(key) on the retryer to allow it again"
        )
        self.key = key
        self.attempts = attempts


@dataclass(frozen=True)
class RetryRecord:
    """What the store knows about a key: attempts so far, when the first one began,
    and whether the budget is spent."""

    attempts: int
    first_attempt_at: float
    exhausted: bool


def _argument(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> Any:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    if name not in bound.arguments:
        raise TypeError(f"persistent_retry: the call has no argument {name!r} for the key")
    return bound.arguments[name]


def key_from_argument(name: str) -> Callable[..., str]:
    """A ``key_fn`` reading the key from the call's argument ``name``."""

    def key_fn(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return str(_argument(fn, args, kwargs, name))

    key_fn.wants_call = True  # type: ignore[attr-defined]
    return key_fn


def key_from_attr(argument: str, attribute: str, prefix: str | None = None) -> Callable[..., str]:
    """A ``key_fn`` reading ``getattr(<argument>, attribute)``, optionally ``prefix:``-ed."""

    def key_fn(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        value = str(getattr(_argument(fn, args, kwargs, argument), attribute))
        return value if prefix is None else f"{prefix}:{value}"

    key_fn.wants_call = True  # type: ignore[attr-defined]
    return key_fn


class _Ledger:
    """The attempt records: one message per key in an ordinary queue."""

    def __init__(self, store: Any, queue: str) -> None:
        self._store = store
        self._name = queue
        self._queue: Queue | None = None
        self._lock = threading.Lock()

    @property
    def q(self) -> Queue:
        with self._lock:
            if self._queue is None:
                self._queue = Queue(self._store, name=self._name, lease_timeout=60.0)
            return self._queue

    def begin(self, key: str, max_attempts: int | None) -> int:
        """Count one attempt of ``key``; raise if the key is already exhausted."""
        q = self.q
        verdict = q.outcome(key)
        if verdict is not None and not verdict.succeeded:
            raise PersistentRetryExhausted(key, _attempts_of(verdict.error))
        q.put(None, key=key, if_ready="keep", if_in_flight="keep")
        lease = q.take(key, timeout=60.0)
        q.release(lease, front=True)  # the claim counted the attempt; hold nothing
        if max_attempts is not None and lease.attempt > max_attempts:
            # Attempts lost to crashes already spent the budget.
            self.exhaust(key, lease.attempt - 1, "attempts used up by earlier runs")
            raise PersistentRetryExhausted(key, lease.attempt - 1)
        return lease.attempt

    def succeed(self, key: str) -> None:
        q = self.q
        lease = q.take(key, timeout=60.0)
        q.ack(lease)

    def exhaust(self, key: str, attempts: int, error: str) -> None:
        q = self.q
        lease = q.take(key, timeout=60.0)
        q.dead_letter(lease, error=_EXHAUSTED.format(n=attempts) + error, record=True)

    def record(self, key: str) -> RetryRecord | None:
        q = self.q
        verdict = q.outcome(key)
        if verdict is not None and not verdict.succeeded:
            return RetryRecord(_attempts_of(verdict.error), verdict.recorded_at, True)
        msg = q.peek(key)
        if msg is None:
            return None
        return RetryRecord(msg.attempts, msg.created_at, False)

    def reset(self, key: str) -> None:
        """Forget the key's attempts and verdict."""
        q = self.q
        q.put(None, key=key, if_ready="keep", if_in_flight="keep")
        lease = q.take(key, timeout=60.0)
        q.ack(lease, result="reset")  # a non-failed outcome replaces the verdict

    def close(self) -> None:
        with self._lock:
            if self._queue is not None:
                self._queue.close()
                self._queue = None


def _attempts_of(error: str | None) -> int:
    prefix = "exhausted after "
    if error and error.startswith(prefix):
        head = error[len(prefix) :].split(" ", 1)[0]
        if head.isdigit():
            return int(head)
    return 0


class PersistentRetrying:
    """Call ``fn`` until it succeeds or the key's persistent budget is spent.

    ``key`` (fixed) or ``key_fn`` (``key_fn(*args, **kwargs)``, or a helper
    from ``key_from_argument``/``key_from_attr``); ``max_attempts`` (or
    ``max_tries``, or tenacity's ``stop_after_attempt``); ``backoff``: seconds
    between attempts in this process (a ``Backoff``, seconds, a callable or a
    tenacity ``wait_*``); ``retry_on``: exception types worth retrying (others
    propagate at once and count as an attempt); ``store``: a URL or store object.
    On the last failure the function's own exception propagates; later calls
    with that key raise ``PersistentRetryExhausted`` without calling it.
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        key_fn: Callable[..., str] | None = None,
        max_attempts: Any = 3,
        max_tries: int | None = None,
        backoff: BackoffLike = 0.0,
        retry_on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
        store: Any = DEFAULT_STORE,
        queue: str = DEFAULT_QUEUE,
        stop: Any = None,
        wait: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if (key is None) == (key_fn is None):
            raise TypeError("persistent retries need exactly one of key= or key_fn=")
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be a str, not {type(key).__name__}")
        if max_tries is not None:
            max_attempts = max_tries
        if stop is not None:
            max_attempts = stop
        self.policy = Retry(
            max_attempts=max_attempts,
            backoff=wait if wait is not None else backoff,
            retry_on=retry_on if isinstance(retry_on, tuple) else (retry_on,),
        )
        self.key = key
        self.key_fn = key_fn
        self._ledger = _Ledger(store, queue)
        self._sleep = sleep

    def key_for(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if self.key is not None:
            return self.key
        assert self.key_fn is not None
        if getattr(self.key_fn, "wants_call", False):
            return self.key_fn(fn, args, kwargs)
        return str(self.key_fn(*args, **kwargs))

    def _verdict(self, key: str, attempt: int, exc: BaseException) -> float | None:
        """Seconds to wait before the next attempt, or None: stop (recorded if spent)."""
        limit = self.policy.max_attempts
        if not isinstance(exc, self.policy.retry_on):
            return None
        if limit is not None and attempt >= limit:
            self._ledger.exhaust(key, attempt, format_error(exc).split("\n", 1)[0])
            return None
        return backoff_delay(self.policy.backoff, attempt)

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        key = self.key_for(fn, args, kwargs)
        while True:
            attempt = self._ledger.begin(key, self.policy.max_attempts)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                delay = self._verdict(key, attempt, exc)
                if delay is None:
                    raise
                self._sleep(delay)
                continue
            self._ledger.succeed(key)
            return result

    def wraps(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self(fn, *args, **kwargs)

        wrapper.retry = self  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    def get_record(self, key: str) -> RetryRecord | None:
        """The key's persisted record, or None when it has none (never failed, or done)."""
        return self._ledger.record(key)

    def reset(self, key: str) -> None:
        """Forget the key's attempts and exhaustion."""
        self._ledger.reset(key)

    def close(self) -> None:
        self._ledger.close()


class PersistentAsyncRetrying(PersistentRetrying):
    """The async twin: awaits ``fn``; the store's short steps run off the event loop."""

    async def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        key = self.key_for(fn, args, kwargs)
        ledger = self._ledger
        while True:
            attempt = await asyncio.to_thread(ledger.begin, key, self.policy.max_attempts)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                delay = await asyncio.to_thread(self._verdict, key, attempt, exc)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                continue
            await asyncio.to_thread(ledger.succeed, key)
            return result

    def wraps(self, fn: F) -> F:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await self(fn, *args, **kwargs)

        wrapper.retry = self  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]


def persistent_retry(**options: Any) -> Callable[[F], F]:
    """Decorate a function (sync or async) with persistent retries; see
    ``PersistentRetrying`` for the options."""

    def decorate(fn: F) -> F:
        cls = PersistentAsyncRetrying if inspect.iscoroutinefunction(fn) else PersistentRetrying
        return cls(**options).wraps(fn)

    return decorate


def persistent_async_retry(**options: Any) -> Callable[[F], F]:
    """``persistent_retry`` for coroutine functions (kept for localqueue users)."""

    def decorate(fn: F) -> F:
        return PersistentAsyncRetrying(**options).wraps(fn)

    return decorate
