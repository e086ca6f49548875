"""Puts of the ``file://`` store: keyless puts take no cross-process lock; keyed
puts (every policy), ``maxsize`` and ``put_many`` take the queue's flock."""

from __future__ import annotations

from collections.abc import Sequence

from leaseq._core import rules
from leaseq._core.ids import new_id
from leaseq._core.model import Event, Message, State
from leaseq.errors import Full, KeyExists, KeyInFlight
from leaseq.stores.base import PutRequest
from leaseq.stores.file import _format as F
from leaseq.stores.file import _notes as N
from leaseq.stores.file._base import (
    _READY,
    StoreBase,
    _dir,
    _enc,
)
from leaseq.stores.file._qdir import QDir
from leaseq.stores.file._view import Entry, entry_of, path_of

__all__ = ["Puts"]


class Puts(StoreBase):
    """Puts of the ``file://`` store: keyless puts take no cross-process lock; keyed"""

    def put(self, queue: str, req: PutRequest, *, now: float | None, maxsize: int = 0) -> Message:
        assert now is not None
        payload = self.codec.pack(req.value)  # TypeError before anything is written
        qd = self._qd(queue)
        if req.key is None and not maxsize:
            # The file is written outside the lock: claims in this process go on meanwhile.
            msg = self._insert(qd, req, None, payload, now, locked=False)
        else:
            with qd.lock, qd.flocked():
                msg = self._put_locked(qd, req, payload, now, maxsize)
        self._after_put(queue, msg, now)
        return msg

    def put_many(
        self, queue: str, reqs: Sequence[PutRequest], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        """All or none: checked first under the queue's lock, then applied (a crash
        in the middle of applying can leave a prefix of the batch stored)."""
        assert now is not None
        payloads = [self.codec.pack(r.value) for r in reqs]
        qd = self._qd(queue)
        with qd.lock, qd.flocked():
            self._check_many(qd, queue, reqs, now, maxsize)
            out = [self._put_locked(qd, r, p, now, 0) for r, p in zip(reqs, payloads, strict=True)]
        for msg in out:
            self._after_put(queue, msg, now)
        return out

    def _check_many(
        self, qd: QDir, name: str, reqs: Sequence[PutRequest], now: float, maxsize: int
    ) -> None:
        seen: dict[str, State | None] = {}
        new = 0
        for req in reqs:
            if req.key is None:
                new += 1
                continue
            if req.key in seen:
                state = seen[req.key]
            else:
                e = self._locate_key(qd, req.key, _enc(now))
                state = None if e is None else e.state
            action = rules.decide_put(state, req.if_ready, req.if_in_flight)
            if action is rules.PutAction.REJECT_READY:
                raise KeyExists(name, req.key)
            if action is rules.PutAction.REJECT_HELD:
                raise KeyInFlight(name, req.key)
            if action is rules.PutAction.INSERT:
                new += 1
            seen[req.key] = _READY if action is rules.PutAction.INSERT else state
        if maxsize:
            live = self._count_live(qd, _enc(now))
            if live + new > maxsize:
                raise Full(f"queue {name!r} holds {live} of {maxsize} live messages")

    def _put_locked(
        self, qd: QDir, req: PutRequest, payload: bytes, now: float, maxsize: int
    ) -> Message:
        """A put that needs the queue lock: an explicit key, or a size limit."""
        key = req.key
        now_k = _enc(now)
        e = None if key is None else self._locate_key(qd, key, now_k)
        if e is None:
            if maxsize:
                live = self._count_live(qd, now_k)
                if live >= maxsize:
                    raise Full(
                        f"queue {qd.name!r} holds {maxsize} live messages (maxsize); "
                        "ack some, or put with block=True to wait"
                    )
            mid = new_id()
            if key is not None:
                qd.write_new(qd.keys, N.key_file(key), f"{mid}\n{key}".encode())
            return self._insert(qd, req, key, payload, now, mid)
        assert key is not None
        action = rules.decide_put(e.state, req.if_ready, req.if_in_flight)
        A = rules.PutAction
        if action is A.REJECT_READY:
            raise KeyExists(qd.name, key)
        if action is A.REJECT_HELD:
            raise KeyInFlight(qd.name, key)
        if action is A.KEEP:
            return self._snap(qd, e)
        if action is A.BUFFER:
            return self._buffer(qd, e, req, key, payload, now)
        if action is A.REPLACE:
            self._unlink_entry(qd, e)
            mid = new_id()
            qd.write_new(qd.keys, N.key_file(key), f"{mid}\n{key}".encode())
            return self._insert(qd, req, key, payload, now, mid)
        # UPDATE (ready, or an expired lease that is ready) / UPDATE_HELD: same place.
        rec = F.decode_record(QDir.read(path_of(qd, e)))
        self._note(qd, e, Event(now, "updated", None))
        new = N.with_notes_flag(e.name)
        d = _dir(qd, e.kind)
        qd.rewrite(d, e.name, d, new, F.encode_record(e.mid, key, rec.created_at, payload))
        self._renamed(qd, e, new, now)
        if e.kind == "l":
            N.drop_follow(qd, e.mid)
        e2 = entry_of(e.kind, new, _enc(now))
        assert e2 is not None
        return self._snap(qd, e2)._replace(value=req.value)

    def _buffer(
        self, qd: QDir, e: Entry, req: PutRequest, key: str, payload: bytes, now: float
    ) -> Message:
        old = N.read_follow(qd, e.mid)
        fid = new_id() if old is None else old.fid
        N.write_follow(
            qd, e.mid, N.Follow(fid, req.priority, req.delay, req.at, req.max_attempts, payload)
        )
        self._note(qd, e, Event(now, "buffered", None))
        new = N.with_notes_flag(e.name)
        if new != e.name:
            qd.move(qd.leased, e.name, qd.leased, new)
            self._renamed(qd, e, new, now)
        return Message(
            fid, key, req.value, req.priority, _READY, 0, now, now, None, None, None,
            (), req.max_attempts,
        )  # fmt: skip
