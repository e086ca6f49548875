"""Notes (last error and history), key files and follow-ups of the ``file://`` store.

These are small side files written rarely (an error, a death, a requeue, an
explicit key); the hot path (put, claim, ack of a keyless message) never
touches them. Each is replaced atomically (write a temporary file, rename).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from typing import Any, NamedTuple

from leaseq._core.model import HISTORY_LIMIT, Event
from leaseq.stores.file._qdir import QDir

__all__ = ["Follow", "Notes", "key_file", "read_follow", "read_notes", "write_notes"]

_SAFE_KEY = re.compile(r"[A-Za-z0-9_\-]{1,120}")


class Notes(NamedTuple):
    last_error: str | None
    events: tuple[Event, ...]  # what happened after the put (bounded)
    claim: str | None = None  # token of the lease whose "claimed" event is in ``events``


EMPTY = Notes(None, ())


def key_file(key: str) -> str:
    """The file name of a key (safe keys as they are, others hashed)."""
    if _SAFE_KEY.fullmatch(key):
        return "=" + key
    return "#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def read_notes(qd: QDir, mid: str) -> Notes:
    try:
        raw = json.loads(QDir.read(qd.notes + mid))
    except (FileNotFoundError, ValueError):
        return EMPTY
    return Notes(raw.get("e"), tuple(Event(a, k, d) for a, k, d in raw.get("h", ())), raw.get("c"))


def write_notes(qd: QDir, mid: str, notes: Notes) -> None:
    events = notes.events[-HISTORY_LIMIT:]
    data = json.dumps({"e": notes.last_error, "h": [list(e) for e in events], "c": notes.claim})
    qd.write_new(qd.notes, mid, data.encode())


def claim_events(
    notes: Notes, token: str | None, claimed: float, owner: str | None, attempt: int
) -> tuple[Event, ...]:
    """The "claimed" event of the current lease, unless the notes already have it
    (a claim is recorded in its file name, not in the notes: that would cost a write)
    or it is the first delivery (not news: ``attempts`` tells it)."""
    if token is None or notes.claim == token or attempt <= 1:
        return ()
    return (Event(claimed, "claimed", owner),)


def record(
    qd: QDir,
    mid: str,
    has_notes: bool,
    events: tuple[Event, ...],
    *,
    error: Any = None,
    fallback: str | None = None,
    lease: tuple[str, float, str | None, int] | None = None,
) -> Notes:
    """Append events (after the current lease's claim, when ``lease`` = (token,
    claimed, owner, attempt) is given) and the error, if any, to a message's notes;
    ``fallback`` becomes the last error when there was none."""
    old = read_notes(qd, mid) if has_notes else EMPTY
    claimed = () if lease is None else claim_events(old, *lease)
    events = tuple(e for e in events if not (e.kind == "expired" and e in old.events))
    notes = Notes(
        str(error) if error is not None else old.last_error or fallback,
        (*old.events, *claimed, *events),
        old.claim if lease is None else lease[0],
    )
    write_notes(qd, mid, notes)
    return notes


def with_notes_flag(name: str) -> str:
    """The same message file name with the ``n`` (has notes) flag set."""
    parts = name.split(".")
    if "n" not in parts[3]:
        parts[3] = parts[3].replace("-", "") + "n"
    return ".".join(parts)


def drop_notes(qd: QDir, mid: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(qd.notes + mid)


class Follow(NamedTuple):
    """A buffered follow-up: its own id and put options, applied when the lease ends."""

    fid: str
    priority: int
    delay: float
    at: float | None
    max_attempts: int | None
    payload: bytes


def read_follow(qd: QDir, mid: str) -> Follow | None:
    try:
        data = QDir.read(qd.follow + mid)
    except FileNotFoundError:
        return None
    head, _, payload = data.partition(b"\n")
    try:
        h = json.loads(head)
        return Follow(h["i"], h["p"], h["d"], h["a"], h["m"], payload)
    except (ValueError, KeyError):
        return None


def write_follow(qd: QDir, mid: str, f: Follow) -> None:
    head = json.dumps({"i": f.fid, "p": f.priority, "d": f.delay, "a": f.at, "m": f.max_attempts})
    qd.write_new(qd.follow, mid, head.encode() + b"\n" + f.payload)


def drop_follow(qd: QDir, mid: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(qd.follow + mid)
