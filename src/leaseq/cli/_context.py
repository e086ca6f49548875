"""One command's surroundings: the parsed options, the store, queues opened on it."""

from __future__ import annotations

import argparse
import os
from typing import Any

import leaseq
from leaseq.cli._errors import CliError
from leaseq.stores.base import Store

__all__ = ["DEFAULT_STORE", "Context"]

DEFAULT_STORE = "sqlite:///./leaseq.db"


class Context:
    """Opens the store once (lazily) and hands out ``leaseq.Queue`` objects on it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = bool(getattr(args, "json", False))
        self.url: str = args.store or os.environ.get("LEASEQ_STORE") or DEFAULT_STORE
        self._store: Store | None = None
        self._queues: list[leaseq.Queue] = []

    @property
    def store(self) -> Store:
        """The store the URL names (opened on first use)."""
        if self._store is None:
            self._store = leaseq.open_store(self.url)
        return self._store

    def queue_names(self) -> list[str]:
        """Names of the queues that hold at least one message, sorted."""
        return sorted(self.store.queues())

    def queue(self, name: str, *, must_exist: bool = False, **options: Any) -> leaseq.Queue:
        """A queue on the store; with ``must_exist`` a queue holding nothing is an error
        (a store cannot tell an empty queue from a misspelt one, so reads say so)."""
        if must_exist and name not in self.store.queues():
            known = ", ".join(self.queue_names()) or "none"
            raise CliError(
                f"no queue {name!r} in {self.store.url} (queues holding messages: {known})"
            )
        q = leaseq.Queue(self.store, name=name, **options)
        self._queues.append(q)
        return q

    def close(self) -> None:
        """Close every queue, then the store. Idempotent."""
        for q in self._queues:
            q.close()
        self._queues.clear()
        if self._store is not None:
            self._store.close()
            self._store = None
