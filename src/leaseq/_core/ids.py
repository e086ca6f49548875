"""Unguessable lease tokens and unique message ids, cheaply.

Tokens come from ``os.urandom`` read in blocks (a claim must not pay a
system call); the block is discarded in a forked child so parent and child
never hand out the same token.
"""

from __future__ import annotations

import itertools
import os
import threading
import time

__all__ = ["new_id", "new_token", "process_prefix"]

_BLOCK = 4096
_lock = threading.Lock()
#: Tokens not handed out yet (one block of randomness cut in 16-hex pieces):
#: ``list.pop`` is atomic, so taking one needs no lock; refills take ``_lock``.
_tokens: list[str] = []


def new_token() -> str:
    """A fresh 64-bit random token as 16 hex characters. Thread-safe."""
    try:
        return _tokens.pop()
    except IndexError:
        return _refill()


def _refill() -> str:
    while True:
        with _lock:
            if not _tokens:
                block = os.urandom(_BLOCK).hex()
                _tokens.extend([block[i : i + 16] for i in range(0, len(block), 16)])
        try:
            return _tokens.pop()
        except IndexError:  # other threads took the whole block meanwhile
            continue


def _process_prefix() -> str:
    # Time + pid + randomness: unique across processes and hosts sharing a store.
    return f"{time.time_ns() // 1_000_000:011x}{os.urandom(5).hex()}"


process_prefix = _process_prefix()
_counter = itertools.count(1)


def new_id() -> str:
    """A message id unique across processes and hosts: ``<prefix>-<n>`` (hex)."""
    return f"{process_prefix}-{next(_counter):x}"


def _after_fork() -> None:
    global _lock, process_prefix, _counter
    _lock = threading.Lock()
    _tokens.clear()
    process_prefix = _process_prefix()
    _counter = itertools.count(1)


os.register_at_fork(after_in_child=_after_fork)
