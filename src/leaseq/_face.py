"""What both faces share that is not waiting: settings, argument checks, store opening.

``AsyncQueue`` (``leaseq/_async/queue.py``) is the one written source of the
queue's behaviour; ``Queue`` (``leaseq/_sync/queue.py``) is generated from it
by ``scripts/unasync.py``. Everything here is plain synchronous code used by both.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from leaseq._core import rules
from leaseq._core.clock import Clock, SubscribableClock, system_clock
from leaseq.errors import ConfigurationError
from leaseq.stores import open_store
from leaseq.stores.base import PutRequest, Store

__all__ = ["Settings", "ThreadedStore", "open_for_queue", "put_request"]

_OVERFLOW = ("block", "reject")
#: ``ack(result=...)``'s "no result given" (None is a result).
UNSET: Any = type("_Unset", (), {"__repr__": lambda self: "UNSET"})()
#: How long the results ledger keeps an outcome unless the queue says otherwise.
DEFAULT_RESULT_TTL = 7 * 86400.0
_new = tuple.__new__


@dataclass(frozen=True)
class Settings:
    """A queue's validated constructor options."""

    name: str
    lease_timeout: float
    max_attempts: int | None
    maxsize: int
    overflow: str
    clock: Clock
    fake_clock: bool  # the clock tells when it moves: waiters recheck then


def settings(
    *,
    name: str,
    lease_timeout: float,
    max_attempts: int | None,
    maxsize: int,
    overflow: str,
    clock: Clock | None,
) -> Settings:
    """Validate the constructor options shared by both faces."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    lease_timeout = rules.check_seconds("lease_timeout", lease_timeout, positive=True)
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
    ):
        raise ValueError(f"max_attempts must be None or an int >= 1, got {max_attempts!r}")
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
        raise ValueError(f"maxsize must be an int >= 0 (0: unbounded), got {maxsize!r}")
    if overflow not in _OVERFLOW:
        raise ValueError(f"overflow must be 'block' or 'reject', got {overflow!r}")
    if clock is None:
        clock = system_clock
    elif not callable(clock):
        raise TypeError("clock must be a callable returning epoch seconds")
    return Settings(
        name=name,
        lease_timeout=lease_timeout,
        max_attempts=max_attempts,
        maxsize=maxsize,
        overflow=overflow,
        clock=clock,
        fake_clock=isinstance(clock, SubscribableClock),
    )


def check_subscribers(name: str, subscribers: Any) -> tuple[str, ...]:
    """``subscribers=[...]``: distinct non-empty names, each a queue ``<name>.<sub>``."""
    if subscribers is None:
        return ()
    if isinstance(subscribers, str):
        raise TypeError("subscribers must be a list of names, not one string")
    subs = tuple(subscribers)
    for sub in subs:
        if not isinstance(sub, str) or not sub:
            raise ValueError(f"queue {name!r}: subscriber names must be non-empty strings")
    if len(set(subs)) != len(subs):
        raise ValueError(f"queue {name!r}: subscriber names must be distinct, got {subs}")
    return subs


def check_result_ttl(ttl: float | None) -> float | None:
    if ttl is None:
        return None
    return rules.check_seconds("result_ttl", ttl, positive=True)


def open_for_queue(store: str | Store, serializer: Any) -> tuple[Store, bool]:
    """Return (store, owned): a URL is opened here (and closed with the queue)."""
    if isinstance(store, str):
        options = {} if serializer is None else {"serializer": serializer}
        try:
            return open_store(store, **options), True
        except TypeError as exc:
            if serializer is not None and "serializer" in str(exc):
                raise ConfigurationError(
                    f"{store.split(':', 1)[0]}:// keeps Python objects as they are and "
                    "takes no serializer"
                ) from exc
            raise
    for attr in ("put", "claim", "ack", "notifier"):
        if not hasattr(store, attr):
            raise TypeError(f"store must be a URL or a leaseq store object, not {store!r}")
    if serializer is not None:
        raise ConfigurationError("pass serializer= when the queue opens the store from a URL")
    return store, False


def put_request(
    value: Any,
    key: str | None,
    priority: int,
    delay: float,
    at: float | None,
    if_ready: str,
    if_in_flight: str,
    max_attempts: int | None,
) -> PutRequest:
    """Validate one put's options (types, ranges, policy names, delay vs at)."""
    if key is not None and type(key) is not str:
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    if type(priority) is not int or not -1000 <= priority <= 1000:
        rules.check_priority(priority)
    if delay:
        if at is not None:
            raise ValueError("pass either delay= or at=, not both")
        delay = rules.check_seconds("delay", delay)
    if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float))):
        raise TypeError(f"at must be an epoch time in seconds, not {at!r}")
    if if_ready != "update" or if_in_flight != "update":
        rules.check_policies(if_ready, if_in_flight)
    return _new(PutRequest, (value, key, priority, delay, at, if_ready, if_in_flight, max_attempts))


def put_item(item: Any, max_attempts: int | None) -> PutRequest:
    """One element of ``put_many``: a value, or a ``(value, options)`` pair."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
        value, options = item
        unknown = set(options) - {"key", "priority", "delay", "at", "if_ready", "if_in_flight"}
        if unknown:
            raise TypeError(f"put_many: unknown option(s) {sorted(unknown)}")
        return put_request(
            value,
            options.get("key"),
            options.get("priority", 0),
            options.get("delay", 0.0),
            options.get("at"),
            options.get("if_ready", "update"),
            options.get("if_in_flight", "update"),
            max_attempts,
        )
    return put_request(item, None, 0, 0.0, None, "update", "update", max_attempts)


def check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    return rules.check_seconds("timeout", timeout)


def check_lease_timeout(lease_timeout: float | None, default: float) -> float:
    if lease_timeout is None:
        return default
    return rules.check_seconds("lease_timeout", lease_timeout, positive=True)


class ThreadedStore:
    """Runs a blocking store's primitives on one dedicated thread, for ``AsyncQueue``.

    The event loop never runs a SQLite statement or a file system call; calls
    from one queue run in order on its own thread.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="leaseq-store")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self._store, name)
        executor = self._executor

        async def call(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))

        setattr(self, name, call)
        return call

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


class InlineStore:
    """Awaitable wrappers around a store whose primitives are in-memory steps."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self._store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        setattr(self, name, call)
        return call

    def shutdown(self) -> None:
        pass


def async_primitives(store: Store) -> Any:
    """The async face's view of a store: awaitable primitives plus ``shutdown()``.

    A store with a native async client (PostgreSQL, Redis) offers
    ``async_primitives()``: an object with the same primitives as coroutines and
    a sync ``shutdown()``. Otherwise in-memory stores run inline on the loop and
    blocking ones on a dedicated thread.
    """
    native = getattr(store, "async_primitives", None)
    if native is not None:
        return native()
    return InlineStore(store) if store.inline else ThreadedStore(store)


class SyncStore:
    """The sync face's view of a store: the store itself, plus a no-op ``shutdown``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        setattr(self, name, attr)
        return attr

    def shutdown(self) -> None:
        pass
