"""How a task's callable is invoked: coroutine functions on the loop, bare
awaitables awaited once, everything else in a thread."""

from __future__ import annotations

import inspect
import types
from typing import Any

__all__ = ["ASYNC", "AWAITABLE", "SYNC", "kind_of"]

ASYNC, SYNC, AWAITABLE = 0, 1, 2

_CO_COROUTINE = inspect.CO_COROUTINE
_Function = types.FunctionType
_Method = types.MethodType


def kind_of(fn: Any) -> int:
    """ASYNC for a coroutine function, AWAITABLE for an awaitable object, else SYNC."""
    if type(fn) is _Method:
        fn_ = fn.__func__
        if type(fn_) is _Function and fn_.__code__.co_flags & _CO_COROUTINE:
            return ASYNC
    elif type(fn) is _Function and fn.__code__.co_flags & _CO_COROUTINE:
        return ASYNC  # the common case, without inspect's slower checks
    return _classify(fn)


def _classify(fn: Any) -> int:
    if inspect.isawaitable(fn):
        return AWAITABLE
    if inspect.iscoroutinefunction(fn):
        return ASYNC
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    if call is not None and inspect.iscoroutinefunction(call):
        return ASYNC
    if not callable(fn):
        raise TypeError(f"a task must be a callable or an awaitable, not {type(fn).__name__}")
    return SYNC
