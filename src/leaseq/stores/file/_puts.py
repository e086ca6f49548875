"""Puts of the ``file://`` store: keyless puts take no cross-process lock; keyed
puts (every policy) and ``maxsize`` take the queue's flock (batches: ``_journal``)."""

from __future__ import annotations

from leaseq._core import rules
from leaseq._core.ids import new_id
from leaseq._core.model import Event, Message
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
