"""Reading the ``file://`` store: parsed entries, logical states, message snapshots.

A read lists the directories (reads are not the hot path) and judges every
entry at ``now``: an expired lease is READY at the head of its priority, or
DEAD (``lease_expired``) when it used its last attempt, whether or not any
process rewrote it yet.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from leaseq._core.model import HISTORY_LIMIT, Event, Message, State
from leaseq.stores.file import _format as F
from leaseq.stores.file._notes import EMPTY, Notes, claim_events, read_follow, read_notes
from leaseq.stores.file._qdir import QDir

__all__ = ["Entry", "entry_of", "scan", "snapshot"]

_READY, _LEASED, _DEAD = State.READY, State.LEASED, State.DEAD


class Entry(NamedTuple):
    """One message file, parsed, with its logical state at the time of the scan."""

    kind: str  # "r", "l", "d": the directory it is in
    name: str
    mid: str
    prio: int
    attempts: int
    ma: int | None
    flags: str
    avail: int  # encoded; for an expired lease, its expiry (it joined the head then)
    exp: int | None  # a lease's expiry (encoded)
    claimed: int | None
    owner: str | None
    token: str | None
    died: int | None
    state: State
    sortkey: str  # delivery order among claimable entries


def entry_of(kind: str, name: str, now: int) -> Entry | None:
    """Parse a name of ``kind``'s directory; None for a foreign file."""
    try:
        if kind == "r":
            r = F.parse_ready(name)
            return Entry(
                "r", name, r.mid, r.prio, r.attempts, r.ma, r.flags, r.avail,
                None, None, None, None, None, _READY, name[: F.SORTKEY],
            )  # fmt: skip
        if kind == "l":
            ln = F.parse_leased(name)
            if ln.exp > now:
                return Entry(
                    "l", name, ln.mid, ln.prio, ln.attempts, ln.ma, ln.flags, ln.avail,
                    ln.exp, ln.claimed, F.decode_owner(ln.owner_enc), ln.token, None, _LEASED, "",
                )  # fmt: skip
            dead = ln.ma is not None and ln.attempts >= ln.ma
            owner = F.decode_owner(ln.owner_enc)
            return Entry(
                "l", name, ln.mid, ln.prio, ln.attempts, ln.ma, ln.flags, ln.exp,
                ln.exp, ln.claimed, owner, ln.token, ln.exp if dead else None,
                _DEAD if dead else _READY, F.head_sortkey(ln.prio, ln.exp, ln.seq),
            )  # fmt: skip
        d = F.parse_dead(name)
        return Entry(
            "d", name, d.mid, d.prio, d.attempts, d.ma, d.flags, d.avail,
            None, None, None, None, d.died, _DEAD, "",
        )  # fmt: skip
    except (ValueError, IndexError):
        return None


def scan(qd: QDir, now: int, kinds: str = "rld") -> list[Entry]:
    """Every message file of the queue, judged at ``now``."""
    out: list[Entry] = []
    for kind in kinds:
        path = {"r": qd.ready, "l": qd.leased, "d": qd.dead}[kind]
        try:
            names = os.listdir(path)
        except FileNotFoundError:
            continue
        for name in names:
            e = entry_of(kind, name, now)
            if e is not None:
                out.append(e)
    return out


def path_of(qd: QDir, e: Entry) -> str:
    return {"r": qd.ready, "l": qd.leased, "d": qd.dead}[e.kind] + e.name


def snapshot(qd: QDir, e: Entry, codec: Any, rec: F.Record | None = None) -> Message | None:
    """The message an entry is (reads its file); None when it vanished meanwhile."""
    if rec is None:
        try:
            rec = F.decode_record(QDir.read(path_of(qd, e)))
        except FileNotFoundError:
            return None
        except F.CorruptRecord as exc:  # quarantined: its notes say why
            if not os.path.exists(path_of(qd, e)):
                return None  # acked meanwhile, and its file reused mid-read (trash/)
            rec = F.Record(e.mid, e.mid, 0.0, b"")
            notes = read_notes(qd, e.mid) if "n" in e.flags else EMPTY
            return _message(e, rec, None, notes if notes.events else Notes(f"corrupt: {exc}", ()))
    if rec.mid != e.mid:  # a reused file (trash/): another message's record
        if not os.path.exists(path_of(qd, e)):
            return None  # acked meanwhile and reused while we read it
        notes = read_notes(qd, e.mid) if "n" in e.flags else EMPTY
        stale = Notes(f"corrupt: stale content of message {rec.mid}", ())
        return _message(e, F.Record(e.mid, e.mid, 0.0, b""), None, notes if notes.events else stale)
    notes = read_notes(qd, e.mid) if "n" in e.flags else EMPTY
    payload = rec.payload
    if e.kind == "l" and e.state is _READY and "k" in e.flags:
        follow = read_follow(qd, e.mid)  # an expired lease's follow-up value wins
        if follow is not None:
            payload = follow.payload
    return _message(e, rec, _value(codec, payload), notes)


def _value(codec: Any, payload: bytes) -> Any:
    """The value, or None when the serializer cannot read it (a quarantined message)."""
    if not payload:
        return None
    try:
        return codec.unpack(payload)
    except Exception:
        return None


def _message(e: Entry, rec: F.Record, value: Any, notes: Notes) -> Message:
    history: tuple[Event, ...] = notes.events  # the put itself is not news
    last_error = notes.last_error
    if e.kind == "l" and e.claimed is not None and e.exp is not None:
        # The lease's own events live in its file name: claimed, then expired or dead.
        history += claim_events(notes, e.token, F.dec_t(e.claimed), e.owner, e.attempts)
        expired = Event(F.dec_t(e.exp), "expired", None)
        if e.state is _READY and expired not in history:
            history += (expired,)
        elif e.state is _DEAD:
            last_error = last_error or "lease_expired"
            history += (Event(F.dec_t(e.exp), "dead", "lease_expired"),)
    history = history[-HISTORY_LIMIT:]
    leased = e.state is _LEASED
    return Message(
        e.mid,
        rec.key,
        value,
        e.prio,
        e.state,
        e.attempts,
        rec.created_at,
        F.dec_t(e.avail),
        F.dec_t(e.exp) if leased and e.exp is not None else None,
        e.owner if leased else None,
        last_error,
        history,
        e.ma,
    )
