"""Shared state and helpers of the ``file://`` store's parts: opening a queue,
writing a new message, locating one by key or id, fencing, killing, notes."""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from leaseq._core import rules
from leaseq._core.ids import new_id
from leaseq._core.model import Event, Lease, Message, State
from leaseq.errors import Closed, LeaseLost
from leaseq.serializers import JsonCodec
from leaseq.stores.base import PutRequest
from leaseq.stores.file import _format as F
from leaseq.stores.file import _notes as N
from leaseq.stores.file._core import Core, next_seq
from leaseq.stores.file._qdir import QDir
from leaseq.stores.file._view import Entry, entry_of, path_of, scan, snapshot

__all__ = ["StoreBase"]

_READY, _LEASED, _DEAD = State.READY, State.LEASED, State.DEAD
_ID = re.compile(r"[0-9a-f]{21}-[0-9a-f]+")
_enc = F.enc_t
_new = tuple.__new__
_PUT = "put"


class StoreBase:
    """What every part of ``FileStore`` shares."""

    inline = False
    server_clock = False
    serializes = True

    def __init__(self, core: Core, codec: Any, url: str) -> None:
        self._core = core
        self.codec = codec
        self.url = url
        self.notifier = core.notifier
        self.closed = False
        #: This handle's queues (emptied by ``close``): the hot paths' lookup.
        self._qds: dict[str, QDir] = {}
        #: The default codec keeps ``bytes`` as they are: a claim can unpack inline.
        self._bytes_pass = type(codec) is JsonCodec

    def _qd(self, queue: str) -> QDir:
        if self.closed:
            raise Closed(f"store {self.url} is closed; open a new queue")
        qd = self._qds[queue] = self._core.qdir(queue)
        return qd

    def _after_put(self, queue: str, msg: Message, now: float) -> None:
        n = self.notifier
        if n.waiting:
            self._core.qdir(queue).mark_own()
        if n.waiting and msg.state is _READY:
            if msg.available_at <= now:
                n.ready(queue, msg.key)
            else:
                n.scheduled(queue, msg.available_at, msg.key)

    def _insert(
        self,
        qd: QDir,
        req: PutRequest,
        key: str | None,
        payload: bytes,
        now: float,
        mid: str | None = None,
        *,
        locked: bool = True,
    ) -> Message:
        """Write a new READY message (its key file, if any, is already written).
        ``locked``: the caller holds ``qd.lock`` (else it is taken to publish)."""
        mid = mid or new_id()
        avail = (
            now if req.at is None and not req.delay else rules.available_at(now, req.delay, req.at)
        )
        ma = req.max_attempts
        name = F.ready_name(
            req.priority, False, _enc(avail), next_seq(), 0, ma, "-" if key is None else "k", mid
        )
        qd.write_new(qd.ready, name, F.encode_record(mid, key, now, payload))
        if locked:
            self._publish(qd, name, now)
        else:
            with qd.lock:
                self._publish(qd, name, now)
        return Message(
            mid, mid if key is None else key, req.value, req.priority, _READY, 0, now, avail,
            None, None, None, (), ma,
        )  # fmt: skip

    @staticmethod
    def _publish(qd: QDir, name: str, now: float) -> None:
        """Tell other processes (the log) and this one (the view) of a new ready name."""
        qd.log(f"{qd.wid} r {name}\n")
        if qd.tracking:
            qd.add_ready(name, _enc(now))

    @staticmethod
    def _note(qd: QDir, e: Entry, event: Event) -> N.Notes:
        """Record an event of a live message (after its current lease's claim)."""
        lease = None
        if e.kind == "l" and e.token is not None and e.claimed is not None:
            lease = (e.token, F.dec_t(e.claimed), e.owner, e.attempts)
            if e.state is _READY and e.exp is not None:  # expired: that happened first
                N.record(qd, e.mid, "n" in e.flags, (Event(F.dec_t(e.exp), "expired", None),),
                         lease=lease)  # fmt: skip
                return N.record(qd, e.mid, True, (event,))
        return N.record(qd, e.mid, "n" in e.flags, (event,), lease=lease)

    @staticmethod
    def _renamed(qd: QDir, e: Entry, new: str, now: float) -> None:
        """Update this process's view (and tell the others) after ``e`` got a new name."""
        if new == e.name:
            return
        qd.forget(e.name, e.kind == "l")
        if e.kind == "r":
            qd.log(f"{qd.wid} r {new}\n")
            if qd.tracking:
                qd.add_ready(new, _enc(now))
        else:
            qd.add_leased(new)
            if e.token is not None and e.token in qd.held:
                qd.held[e.token] = new

    def _unlink_entry(self, qd: QDir, e: Entry) -> None:
        os.unlink(path_of(qd, e))
        qd.forget(e.name, e.kind == "l")
        N.drop_follow(qd, e.mid)
        if "n" in e.flags:
            N.drop_notes(qd, e.mid)

    def _snap(self, qd: QDir, e: Entry) -> Message:
        msg = snapshot(qd, e, self.codec)
        if msg is None:
            raise LeaseLost(qd.name, e.mid, e.attempts, "acked_or_removed")
        return msg

    def _locate_id(self, qd: QDir, mid: str, now: int) -> Entry | None:
        """The live (ready or leased) file of ``mid``, or None."""
        qd.sync()
        hit = qd.byid.get(mid)
        if hit is not None:
            e = entry_of(hit[0], hit[1], now)
            if e is not None and os.path.exists(path_of(qd, e)):
                return e
        for e in scan(qd, now, "rl"):  # the cache was stale: look at the directories
            if e.mid == mid:
                return e
        return None

    def _locate_key(self, qd: QDir, key: str, now: int, settle: bool = True) -> Entry | None:
        """The key's live message (logically READY or LEASED); DEAD ones are absent."""
        try:
            mid, _, k = QDir.read(qd.keys + N.key_file(key)).decode().partition("\n")
        except FileNotFoundError:
            mid, k = (key, key) if _ID.fullmatch(key) else ("", "")
        if not mid or k != key:
            return None
        e = self._locate_id(qd, mid, now)
        if settle and e is not None and e.state is _DEAD and e.kind == "l" and mid != key:
            e = self._settle_expired(qd, e, key, now)
        if e is None or e.state is _DEAD:
            return None
        return e

    def _settle_expired(self, qd: QDir, e: Entry, key: str, now: int) -> Entry | None:
        """A keyed lease expired on its last attempt (logically DEAD): if it buffered a
        follow-up, make it dead now so the follow-up is the key's READY message."""
        if not os.path.exists(qd.follow + e.mid):
            return e
        with qd.flocked():
            if e.died is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._kill(qd, e, F.dec_t(e.died), "lease_expired", None)
            return self._locate_key(qd, key, now, settle=False)

    def _count_live(self, qd: QDir, now: int) -> int:
        return sum(1 for e in scan(qd, now, "lr") if e.state is not _DEAD)

    def _key_of(self, qd: QDir, e: Entry) -> str | None:
        if "k" not in e.flags:
            return e.mid
        try:
            rec = F.decode_record(QDir.read(path_of(qd, e)))
        except (FileNotFoundError, F.CorruptRecord):
            return None
        return rec.key if rec.mid == e.mid else None  # (else: acked, its file reused)

    def _held(self, qd: QDir, lease: Lease, now_k: int) -> F.LeasedName:
        """Fencing: the leased file ``lease`` holds at ``now``, or LeaseLost."""
        name = qd.held.get(lease.token)
        keyed = lease.key != lease.message.id
        if name is None or (keyed and not os.path.exists(qd.leased + name)):
            # Not made here, or (keyed, under the flock) renamed elsewhere to add a note.
            e = self._locate_id(qd, lease.message.id, now_k)
            name = e.name if e is not None and e.kind == "l" and e.token == lease.token else None
        if name is not None:
            ln = F.parse_leased(name)
            if now_k < ln.exp:
                qd.held[lease.token] = name
                return ln
        self._lost(qd, lease, now_k)
        raise AssertionError("unreachable")

    def _lost(self, qd: QDir, lease: Lease, now_k: int) -> None:
        qd.held.pop(lease.token, None)
        e = self._locate_id(qd, lease.message.id, now_k)
        if e is None:
            for d in scan(qd, now_k, "d"):
                if d.mid == lease.message.id:
                    e = d
        rules.check_lease(
            queue=qd.name,
            message_id=lease.message.id,
            attempt=lease.attempt,
            token=lease.token,
            found=e is not None,
            state=None if e is None else e.state if e.kind != "l" else _LEASED,
            held_token=None if e is None else e.token,
            lease_expires_at=None if e is None or e.exp is None else F.dec_t(e.exp),
            now=F.dec_t(now_k),
        )
        raise LeaseLost(qd.name, lease.message.id, lease.attempt, "claimed_again")

    def _locked_if_keyed(self, qd: QDir, lease: Lease) -> Any:
        """Keyed leased files are only changed under the queue's flock (follow-ups,
        key files); keyless ones by a single rename or unlink."""
        if lease.key != lease.message.id:
            return qd.flocked()
        return _NOLOCK

    def _kill(
        self,
        qd: QDir,
        e: Entry,
        now: float,
        reason: str,
        error: str | None,
        born: list[Message] | None = None,
    ) -> Message:
        """Move a message to dead/ with its reason (last_error: the error, else the
        previous error, else the reason). A keyed message's buffered follow-up
        becomes a fresh READY message of the key (appended to ``born``)."""
        lease = None
        if e.kind == "l" and e.token is not None and e.claimed is not None:
            lease = (e.token, F.dec_t(e.claimed), e.owner, e.attempts)
        N.record(
            qd, e.mid, "n" in e.flags, (Event(now, "dead", reason),), error=error,
            fallback=reason, lease=lease,
        )  # fmt: skip
        flags = N.with_notes_flag(e.name).split(".")[3]
        src = _dir(qd, e.kind)
        new = F.dead_name(_enc(now), next_seq(), e.attempts, e.ma, flags, e.mid, e.prio, e.avail)
        try:
            rec = F.decode_record(QDir.read(src + e.name))
            if rec.mid != e.mid:  # a reused file's stale content: not this message's
                raise F.CorruptRecord(rec.mid)
        except F.CorruptRecord:
            rec = F.Record(e.mid, e.mid, 0.0, b"")
        qd.move(src, e.name, qd.dead, new)
        qd.forget(e.name, e.kind == "l")
        if "k" in e.flags and rec.key != e.mid:
            follow = self._end_key(qd, rec.key, e.mid, now)
            if follow is not None and born is not None:
                born.append(follow)
        d = entry_of("d", new, _enc(now))
        assert d is not None
        msg = snapshot(qd, d, self.codec, rec if rec.payload else None)
        assert msg is not None
        return msg

    def _end_key(self, qd: QDir, key: str, mid: str, now: float) -> Message | None:
        """Message ``mid`` of ``key`` ended (acked or dead; flock held): its buffered
        follow-up becomes a fresh READY message of the key, else the key is absent.
        (A crash right after the message's removal, before this, loses the
        follow-up: its file stays unused in follow/.)"""
        follow = N.read_follow(qd, mid)
        if follow is None:
            self._drop_key_file(qd, key, mid)
            return None
        qd.write_new(qd.keys, N.key_file(key), f"{follow.fid}\n{key}".encode())
        req = PutRequest(
            self.codec.unpack(follow.payload), key, follow.priority, follow.delay, follow.at,
            max_attempts=follow.max_attempts,
        )  # fmt: skip
        msg = self._insert(qd, req, key, follow.payload, now, follow.fid)
        N.drop_follow(qd, mid)
        return msg

    @staticmethod
    def _drop_key_file(qd: QDir, key: str, mid: str) -> None:
        path = qd.keys + N.key_file(key)
        try:
            if QDir.read(path).decode().partition("\n")[0] == mid:
                os.unlink(path)
        except FileNotFoundError:
            pass

    def _reap(self, qd: QDir, now_k: int) -> None:
        """Move expired leases that used their last attempt to dead/ (under the flock)."""
        for e in scan(qd, now_k, "l"):
            if e.state is _DEAD and e.died is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._kill(qd, e, F.dec_t(e.died), "lease_expired", None)


def _dir(qd: QDir, kind: str) -> str:
    return {"r": qd.ready, "l": qd.leased, "d": qd.dead}[kind]


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NOLOCK = _NoLock()
