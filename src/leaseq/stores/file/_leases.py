"""Lease operations of the ``file://`` store: renew, ack, release, dead-letter,
and requeueing dead letters. Keyless leases: one rename or unlink; keyed ones
under the queue's flock (follow-ups, key files)."""

from __future__ import annotations

from leaseq._core import rules
from leaseq._core.model import HISTORY_LIMIT, Event, Lease, Message, Outcome
from leaseq.errors import KeyExists, MessageNotFound
from leaseq.stores.file import _format as F
from leaseq.stores.file import _notes as N
from leaseq.stores.file import _results as R
from leaseq.stores.file._base import (
    _DEAD,
    _READY,
    StoreBase,
    _enc,
)
from leaseq.stores.file._core import next_seq
from leaseq.stores.file._qdir import QDir
from leaseq.stores.file._view import Entry, entry_of, scan

__all__ = ["Leases"]


class Leases(StoreBase):
    """Lease operations of the ``file://`` store: renew, ack, release, dead-letter,"""

    def renew(self, queue: str, lease: Lease, *, now: float | None, seconds: float) -> Lease:
        assert now is not None
        qd = self._qd(queue)
        now_k = _enc(now)
        exp = now + seconds
        with qd.lock, self._locked_if_keyed(qd, lease):
            ln = self._held(qd, lease, now_k)
            old = qd.held[lease.token]
            new = F.leased_name(
                _enc(exp), next_seq(), ln.attempts, ln.ma, ln.flags, ln.mid, ln.prio, ln.avail,
                ln.claimed, ln.token, ln.owner_enc,
            )  # fmt: skip
            try:
                qd.move(qd.leased, old, qd.leased, new)
            except FileNotFoundError:
                self._lost(qd, lease, now_k)
            qd.forget(old, True)
            qd.add_leased(new)
            qd.held[lease.token] = new
        if self.notifier.waiting:
            qd.mark_own()
            self.notifier.scheduled(queue, exp, lease.key)
        return lease._replace(expires_at=exp, message=lease.message._replace(lease_expires_at=exp))

    def ack(
        self, queue: str, lease: Lease, *, now: float | None, outcome: Outcome | None = None
    ) -> None:
        """Remove the leased message (its buffered follow-up becomes READY). With
        ``outcome``: under the flock, the outcome file is written (durably) first,
        then the message removed; a crash in between leaves the message live with
        its outcome recorded (a worker then sees the outcome and acks at once)."""
        assert now is not None
        qd = self._qds.get(queue) or self._qd(queue)
        if outcome is not None:
            self._ack_outcome(qd, queue, lease, now, outcome)
            return
        mid = lease.message.id
        if lease.key == mid:  # keyless: one rename, no cross-process lock
            held, lock = qd.held, qd.lock
            lock.acquire()
            try:
                name = held.get(lease.token)
                if name is not None:
                    # A lease this process made on a message without notes has its
                    # expiry at hand (``plain``); any other, in its name.
                    exp = qd.plain.pop(name, None)
                    if now < exp if exp is not None else _enc(now) < int(name[:16], 16):
                        try:
                            qd.acked(name, mid)
                        except FileNotFoundError:
                            self._lost(qd, lease, _enc(now))
                        del held[lease.token]
                        if exp is None and "n" in name.split(".", 4)[3]:
                            N.drop_notes(qd, mid)
                        name = ""
            finally:
                lock.release()
            if name == "":
                if self.notifier.waiting:
                    qd.mark_own()
                    self.notifier.space(queue)
                return
        now_k = _enc(now)
        with qd.lock, self._locked_if_keyed(qd, lease):
            follow_msg = self._remove_held(qd, lease, now, now_k, None)
        self._after_ack(queue, qd, follow_msg, now)

    def _ack_outcome(
        self, qd: QDir, queue: str, lease: Lease, now: float, outcome: Outcome
    ) -> None:
        payload = self.codec.pack(outcome.value)  # TypeError before anything changes
        data = R.encode(outcome, payload, lease.message.id)
        with qd.lock, qd.flocked():
            follow_msg = self._remove_held(qd, lease, now, _enc(now), (outcome.key, data))
        self._after_ack(queue, qd, follow_msg, now)
        if self.notifier.waiting:
            self.notifier.settled(queue, outcome.key)

    def _remove_held(
        self, qd: QDir, lease: Lease, now: float, now_k: int, result: tuple[str, bytes] | None
    ) -> Message | None:
        """The ack itself (locks held): fence, record the outcome, remove the file."""
        ln = self._held(qd, lease, now_k)
        name = qd.held[lease.token]
        if result is not None:
            R.write(qd, *result)  # durable before the removal: a crash leaves it live
        try:
            qd.discard(name)
        except FileNotFoundError:
            self._lost(qd, lease, now_k)
        del qd.held[lease.token]
        qd.forget(name, True)
        if "n" in ln.flags:
            N.drop_notes(qd, ln.mid)
        if lease.key != ln.mid:
            return self._end_key(qd, lease.key, ln.mid, now)
        return None

    def _after_ack(self, queue: str, qd: QDir, follow_msg: Message | None, now: float) -> None:
        n = self.notifier
        if n.waiting:
            qd.mark_own()
            if follow_msg is not None:
                self._after_put(queue, follow_msg, now)
            else:
                n.space(queue)

    def release(
        self,
        queue: str,
        lease: Lease,
        *,
        now: float | None,
        delay: float = 0.0,
        front: bool = False,
        error: str | None = None,
    ) -> Message:
        assert now is not None
        qd = self._qd(queue)
        now_k = _enc(now)
        with qd.lock, self._locked_if_keyed(qd, lease):
            ln = self._held(qd, lease, now_k)
            name = qd.held.pop(lease.token)
            e = entry_of("l", name, now_k)
            assert e is not None
            born: list[Message] = []
            try:
                if rules.after_release(ln.attempts, ln.ma) is _DEAD:
                    msg = self._kill(qd, e, now, "max_attempts", error, born)
                    dead = True
                else:
                    msg = self._back(qd, e, ln, lease, now, delay, front, error)
                    dead = False
            except FileNotFoundError:
                self._lost(qd, lease, now_k)
                raise
        n = self.notifier
        if n.waiting:
            qd.mark_own()
            if dead:
                n.space(queue)
                for m in born:
                    self._after_put(queue, m, now)
            elif delay > 0:
                n.scheduled(queue, msg.available_at, msg.key)
            else:
                n.ready(queue, msg.key)
        return msg

    def _back(
        self,
        qd: QDir,
        e: Entry,
        ln: F.LeasedName,
        lease: Lease,
        now: float,
        delay: float,
        front: bool,
        error: str | None,
    ) -> Message:
        """A released message returns to ready/ (a buffered follow-up's value wins)."""
        avail = now + delay if delay > 0 else now
        notes = N.record(
            qd, ln.mid, "n" in ln.flags, (Event(now, "released", error),), error=error,
            lease=(ln.token, F.dec_t(ln.claimed), F.decode_owner(ln.owner_enc), ln.attempts),
        )  # fmt: skip
        flags = N.with_notes_flag(e.name).split(".")[3]
        new = F.ready_name(ln.prio, front, _enc(avail), next_seq(), ln.attempts, ln.ma, flags,
                           ln.mid)  # fmt: skip
        rec = F.decode_record(QDir.read(qd.leased + e.name))
        payload = rec.payload
        follow = N.read_follow(qd, ln.mid) if "k" in flags else None
        if follow is not None:
            payload = follow.payload
            data = F.encode_record(rec.mid, rec.key, rec.created_at, payload)
            qd.rewrite(qd.leased, e.name, qd.ready, new, data)
            N.drop_follow(qd, ln.mid)
        else:
            qd.move(qd.leased, e.name, qd.ready, new)
        qd.forget(e.name, True)
        qd.log(f"{qd.wid} r {new}\n")
        qd.add_ready(new, _enc(now))
        value = self.codec.unpack(payload)
        return Message(
            ln.mid, rec.key, value, ln.prio, _READY, ln.attempts, rec.created_at, avail,
            None, None, notes.last_error,
            notes.events[-HISTORY_LIMIT:], ln.ma,
        )  # fmt: skip

    def dead_letter(
        self,
        queue: str,
        lease: Lease,
        *,
        now: float | None,
        error: str | None = None,
        outcome: Outcome | None = None,
    ) -> Message:
        """Move the leased message to dead/ (its buffered follow-up becomes READY).
        With ``outcome``: written first, under the flock, as ``ack`` does."""
        assert now is not None
        qd = self._qd(queue)
        now_k = _enc(now)
        payload = None if outcome is None else self.codec.pack(outcome.value)
        born: list[Message] = []
        lock = qd.flocked() if outcome is not None else self._locked_if_keyed(qd, lease)
        with qd.lock, lock:
            ln = self._held(qd, lease, now_k)
            name = qd.held[lease.token]
            if outcome is not None and payload is not None:
                R.write(qd, outcome.key, R.encode(outcome, payload, ln.mid))
            e = entry_of("l", name, now_k)
            assert e is not None
            try:
                reason = error if error is not None else "dead_lettered"
                msg = self._kill(qd, e, now, reason, error, born)
            except FileNotFoundError:
                self._lost(qd, lease, now_k)
                raise
            qd.held.pop(lease.token, None)
        n = self.notifier
        if n.waiting:
            qd.mark_own()
            n.space(queue)
            for m in born:
                self._after_put(queue, m, now)
            if outcome is not None:
                n.settled(queue, outcome.key)
        return msg

    def requeue_dead(
        self,
        queue: str,
        message_id: str,
        *,
        now: float | None,
        delay: float = 0.0,
        reset_attempts: bool = True,
    ) -> Message:
        assert now is not None
        qd = self._qd(queue)
        now_k = _enc(now)
        with qd.lock, qd.flocked():
            self._reap(qd, now_k)
            e = next((d for d in scan(qd, now_k, "d") if d.mid == message_id), None)
            if e is None:
                raise MessageNotFound(queue, message_id, "dead letter")
            rec = F.decode_record(QDir.read(qd.dead + e.name))
            if rec.key != e.mid:
                if self._locate_key(qd, rec.key, now_k) is not None:
                    raise KeyExists(queue, rec.key)
                qd.write_new(qd.keys, N.key_file(rec.key), f"{e.mid}\n{rec.key}".encode())
            notes = N.record(qd, e.mid, "n" in e.flags, (Event(now, "requeued", None),))
            flags = N.with_notes_flag(e.name).split(".")[3]
            avail = now + delay
            attempts = 0 if reset_attempts else e.attempts
            new = F.ready_name(e.prio, False, _enc(avail), next_seq(), attempts, e.ma, flags, e.mid)
            qd.move(qd.dead, e.name, qd.ready, new)
            qd.log(f"{qd.wid} r {new}\n")
            if qd.tracking:
                qd.add_ready(new, now_k)
            msg = Message(
                e.mid, rec.key, self.codec.unpack(rec.payload), e.prio, _READY, attempts,
                rec.created_at, avail, None, None, notes.last_error,
                notes.events[-HISTORY_LIMIT:], e.ma,
            )  # fmt: skip
        if self.notifier.waiting:
            qd.mark_own()
            if delay > 0:
                self.notifier.scheduled(queue, avail, msg.key)
            else:
                self.notifier.ready(queue, msg.key)
        return msg
