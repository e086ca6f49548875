"""localqueue / tenacity retry keywords -> ``leaseq.Retry`` / ``PersistentRetrying`` options."""

from __future__ import annotations

from typing import Any

__all__ = ["retry_on", "translate_retry_kwargs"]

#: tenacity callbacks leaseq has no hook for; accepted only when None.
_UNSUPPORTED = ("before", "after", "before_sleep", "retry_error_callback")


def retry_on(retry: Any) -> tuple[type[BaseException], ...]:
    """tenacity's ``retry=`` as exception types: a type, a tuple of types, or
    ``retry_if_exception_type(...)`` (its ``exception_types``)."""
    if isinstance(retry, type) and issubclass(retry, BaseException):
        return (retry,)
    if isinstance(retry, tuple) and all(isinstance(t, type) for t in retry):
        return retry
    types = getattr(retry, "exception_types", None)
    if types is not None:
        return types if isinstance(types, tuple) else (types,)
    raise TypeError(
        f"retry={retry!r} is not supported: pass exception types or "
        "tenacity.retry_if_exception_type(...)"
    )


def translate_retry_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Map ``max_tries``/``stop``/``wait``/``retry``/``store_path`` onto leaseq names
    (``max_attempts``, ``backoff``, ``retry_on``, ``store``); refuse what has no meaning."""
    kw = dict(kwargs)
    for name in _UNSUPPORTED:
        if kw.pop(name, None) is not None:
            raise TypeError(f"tenacity option {name}= is not supported by leaseq")
    kw.pop("reraise", None)  # leaseq always re-raises the function's own exception
    kw.pop("clear_on_success", None)  # success always removes the key's record
    out: dict[str, Any] = {}
    if "max_tries" in kw:
        out["max_attempts"] = kw.pop("max_tries")
    if "stop" in kw:
        out["max_attempts"] = kw.pop("stop")
    if "wait" in kw:
        out["backoff"] = kw.pop("wait")
    if "retry" in kw:
        out["retry_on"] = retry_on(kw.pop("retry"))
    if "store_path" in kw:
        path = kw.pop("store_path")
        if kw.get("store") is not None:
            raise ValueError("pass store= or store_path=, not both")
        out["store"] = f"sqlite:///{path}"
    out.update(kw)
    return out
