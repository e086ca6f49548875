"""The results ledger of the ``file://`` store: one outcome file per key in ``results/``.

An outcome file is replaced atomically (written whole into ``tmp/``, renamed
over the old one; fsynced first in durable mode), so a reader sees the old
outcome or the new one, never a mix. ``ack``/``dead_letter`` write it *before*
the message file is removed (see ``_leases``): a crash in between leaves the
message live with its outcome already recorded, never removed and forgotten.

Content: ``LQO1``, a CRC32 of the rest, a JSON header line (key, status,
error, times, the message id that settled it) and the value packed by the
store's serializer.
"""

from __future__ import annotations

import json
import os
from typing import Any

from leaseq._core.model import Outcome
from leaseq.stores.file import _format as F
from leaseq.stores.file._notes import key_file
from leaseq.stores.file._qdir import QDir

__all__ = ["encode", "prune", "read", "write"]

_MAGIC = b"LQO1"


def encode(outcome: Outcome, payload: bytes, mid: str) -> bytes:
    """The bytes of an outcome file (``payload``: the value, already packed)."""
    head = json.dumps(
        {
            "k": outcome.key,
            "s": outcome.status,
            "e": outcome.error,
            "r": outcome.recorded_at,
            "x": outcome.expires_at,
            "m": mid,
        }
    ).encode()
    body = head + b"\n" + payload
    return F.seal(_MAGIC, body)


def _parse(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """Header and payload of an outcome file; None when torn or foreign."""
    body = F.unseal(_MAGIC, data)
    if body is None:
        return None
    head, _sep, payload = body.partition(b"\n")
    try:
        h = json.loads(head)
    except ValueError:
        return None
    return (h, payload) if isinstance(h, dict) else None


def write(qd: QDir, key: str, data: bytes) -> None:
    """Record (or replace) the key's outcome; durable before it returns in durable mode."""
    qd.write_new(qd.results, key_file(key), data)


def read(qd: QDir, key: str, codec: Any, now: float) -> Outcome | None:
    """The key's outcome, or None (absent, torn, or ``expires_at <= now``)."""
    try:
        parsed = _parse(QDir.read(qd.results + key_file(key)))
    except FileNotFoundError:
        return None
    if parsed is None:
        return None
    h, payload = parsed
    if h.get("k") != key:  # (a hashed file name: never another key's, but say so)
        return None
    expires = h.get("x")
    if expires is not None and expires <= now:
        return None
    return Outcome(key, h["s"], codec.unpack(payload), h.get("e"), h.get("r", 0.0), expires)


def prune(qd: QDir, before: float) -> int:
    """Remove outcomes with ``expires_at <= before`` (and torn files); how many
    outcomes went. The caller holds the queue's flock (writers take it too)."""
    n = 0
    for name in os.listdir(qd.results):
        path = qd.results + name
        try:
            parsed = _parse(QDir.read(path))
        except FileNotFoundError:
            continue
        expires = None if parsed is None else parsed[0].get("x")
        if parsed is None or (expires is not None and expires <= before):
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            n += parsed is not None
    return n
