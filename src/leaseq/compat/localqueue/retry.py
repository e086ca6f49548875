"""``localqueue.retry`` names over ``leaseq.retry``.

``from localqueue.retry import persistent_retry`` becomes
``from leaseq.compat.localqueue.retry import persistent_retry``. Attempt counts
live in a leaseq store (``sqlite:///./leaseq.db`` unless ``store=`` or
``store_path=`` says otherwise): one message per key, the store's own claim
counter as the attempt count, so a crash mid-call still counts.

Accepted: ``key``/``key_fn``, ``max_tries`` (or ``max_attempts``, or tenacity's
``stop=stop_after_attempt(n)``), ``wait`` (seconds, a callable or a tenacity
``wait_*``), ``retry`` (exception types or ``retry_if_exception_type``),
``store`` (URL, store object, or an attempt store below), ``store_path``,
``reraise`` and ``clear_on_success`` (leaseq always re-raises and always clears
on success). tenacity's ``before``/``after``/``before_sleep``/
``retry_error_callback`` are refused with a TypeError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from leaseq import retry as _r
from leaseq.compat.localqueue._options import translate_retry_kwargs
from leaseq.retry import PersistentRetryExhausted, RetryRecord, key_from_argument, key_from_attr
from leaseq.stores import open_store

__all__ = [
    "MemoryAttemptStore",
    "PersistentAsyncRetrying",
    "PersistentRetryExhausted",
    "PersistentRetrying",
    "RetryRecord",
    "SQLiteAttemptStore",
    "close_default_store",
    "idempotency_key_from_id",
    "key_from_argument",
    "key_from_attr",
    "persistent_async_retry",
    "persistent_retry",
]

F = TypeVar("F", bound=Callable[..., Any])


class PersistentRetrying(_r.PersistentRetrying):
    """localqueue's retryer: tenacity-style keywords (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**translate_retry_kwargs(kwargs))

    def copy(self, **kwargs: Any) -> PersistentRetrying:
        """A retryer with the same key and store and these options changed."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        if kwargs:
            fresh = type(self)(key=self.key, key_fn=self.key_fn, **kwargs)
            new.policy = fresh.policy
            if "key" in kwargs or "key_fn" in kwargs:
                new.key, new.key_fn = fresh.key, fresh.key_fn
        return new


class PersistentAsyncRetrying(PersistentRetrying, _r.PersistentAsyncRetrying):
    """The async retryer (store steps run off the event loop)."""


def persistent_retry(**kwargs: Any) -> Callable[[F], F]:
    """Decorate a function with persistent retries (``key=`` or ``key_fn=`` required)."""
    return _r.persistent_retry(**translate_retry_kwargs(kwargs))


def persistent_async_retry(**kwargs: Any) -> Callable[[F], F]:
    """Decorate a coroutine function with persistent retries."""
    return _r.persistent_async_retry(**translate_retry_kwargs(kwargs))


def idempotency_key_from_id(argument_name: str, *, prefix: str | None = None) -> Any:
    """``key_from_attr(argument_name, "id", prefix=prefix)``."""
    return key_from_attr(argument_name, "id", prefix)


def SQLiteAttemptStore(path: str) -> Any:
    """An attempt store in the SQLite file ``path`` (a leaseq ``sqlite://`` store)."""
    return open_store(f"sqlite:///{path}")


def MemoryAttemptStore() -> Any:
    """An in-memory attempt store (share the object between retryers to share counts)."""
    return open_store("memory://")


def close_default_store(all_threads: bool = False) -> None:
    """Kept for localqueue users: leaseq's retryers open their store per retryer
    and close it with ``retryer.close()``, so there is no shared default to close."""
    return None
