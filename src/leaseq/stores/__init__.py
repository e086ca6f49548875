"""Stores by URL scheme, imported lazily (a missing extra is a clear error).

``open_store("sqlite:///jobs.db")`` returns a store object. Each scheme maps
to ``module:function``; the function takes the parsed URL and keyword options.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import SplitResult, urlsplit

from leaseq.errors import ConfigurationError
from leaseq.stores.base import PutRequest, Store

__all__ = ["PutRequest", "Store", "open_store", "register_scheme"]

_SCHEMES: dict[str, tuple[str, str | None]] = {
    # scheme: ("module:function", extra that provides its driver)
    "memory": ("leaseq.stores.memory:open_memory", None),
    "sqlite": ("leaseq.stores.sqlite:open_sqlite", None),
    "file": ("leaseq.stores.file:open_file", None),
    "redis": ("leaseq.stores.redis:open_redis", "redis"),
    "rediss": ("leaseq.stores.redis:open_redis", "redis"),
    "unix": ("leaseq.stores.redis:open_redis", "redis"),
    "postgresql": ("leaseq.stores.postgres:open_postgres", "postgres"),
    "postgres": ("leaseq.stores.postgres:open_postgres", "postgres"),
}


def register_scheme(scheme: str, target: str, extra: str | None = None) -> None:
    """Map a URL scheme to ``"module:function"`` (for third-party stores)."""
    _SCHEMES[scheme] = (target, extra)


def open_store(url: str, **options: Any) -> Store:
    """Open the store a URL names. Raises ConfigurationError for a bad URL or missing extra."""
    if not isinstance(url, str):
        raise TypeError(f"store must be a URL string or a store object, not {type(url).__name__}")
    parts: SplitResult = urlsplit(url)
    entry = _SCHEMES.get(parts.scheme)
    if entry is None or "://" not in url:
        known = ", ".join(f"{s}://" for s in sorted(_SCHEMES))
        raise ConfigurationError(f"unknown store URL {url!r}; use one of {known}")
    target, extra = entry
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ConfigurationError(
                f"the {parts.scheme}:// store is not available in this leaseq build"
            ) from exc
        if extra is not None:
            raise ConfigurationError(
                f"the {parts.scheme}:// store needs an extra: pip install 'leaseq[{extra}]'"
            ) from exc
        raise
    opener = getattr(module, func_name)
    store: Store = opener(parts, **options)
    return store
