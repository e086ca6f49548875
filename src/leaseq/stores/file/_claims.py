"""Claims of the ``file://`` store: one rename from ready/ to leased/ (the loser
gets ``FileNotFoundError`` and moves on); expired leases are taken over at the
head of their priority."""

from __future__ import annotations

import heapq
import os
import struct
from typing import Any

from leaseq._core.ids import new_token
from leaseq._core.model import HISTORY_LIMIT, Event, Lease, Message
from leaseq.stores.file import _format as F
from leaseq.stores.file import _notes as N
from leaseq.stores.file._base import (
    _DEAD,
    _LEASED,
    _NOLOCK,
    _READY,
    StoreBase,
    _enc,
    _new,
)
from leaseq.stores.file._core import next_seq
from leaseq.stores.file._qdir import QDir
from leaseq.stores.file._view import entry_of, scan

hex_pair, dec_hex = F.hex_pair, F.dec_hex
_pack_q = struct.Struct(">Q").pack  # (16 hex digits of a sequence number: .hex())

__all__ = ["Claims"]


class Claims(StoreBase):
    """Claims of the ``file://`` store: one rename from ready/ to leased/ (the loser"""

    def claim(
        self,
        queue: str,
        *,
        now: float | None,
        lease_timeout: float,
        owner: str | None,
        limit: int = 1,
    ) -> list[Lease]:
        assert now is not None
        qd = self._qds.get(queue) or self._qd(queue)
        owner_enc = "-" if owner is None else F.encode_owner(owner)
        exp = now + lease_timeout
        eh, nh = hex_pair(exp, now)
        mark = nh + "g"  # (due_mark(nh))
        out: list[Lease] = []
        lock = qd.lock
        lock.acquire()
        try:
            qd.sync()
            while len(out) < limit:
                dh, lh = qd.dheap, qd.lheap  # (a relist replaces the heaps: re-read each time)
                if (dh and dh[0] < mark) or (lh and lh[0] < mark):
                    qd.due(mark)
                line, heap = qd.rline, qd.rheap  # the lesser head is the next
                if line and (not heap or line[0] < heap[0]):
                    name = line.popleft()
                elif heap:
                    name = heapq.heappop(heap)
                elif qd.idle():
                    continue
                else:
                    break
                if name in qd.known:  # a ready name (and not gone)
                    lease = self._claim_ready(qd, name, now, nh, exp, eh, owner, owner_enc)
                elif name[F.SORTKEY : F.SORTKEY + 1] == "|":  # an expired lease
                    name = name[F.SORTKEY + 1 :]
                    if name not in qd.lknown:
                        continue
                    lease = self._claim_expired(qd, name, now, _enc(now), exp, owner, owner_enc)
                else:
                    continue
                if lease is not None:
                    out.append(lease)
        finally:
            lock.release()
        if out and self.notifier.waiting:
            qd.mark_own()
            for lease in out:
                self.notifier.scheduled(queue, lease.expires_at, lease.key)
        return out

    def _claim_ready(
        self,
        qd: QDir,
        name: str,
        now: float,
        nh: str,
        exp: float,
        eh: str,
        owner: Any,
        oenc: str,
    ) -> Lease | None:
        """The hot path: one rename, one read (no write, no lock across processes); for
        a keyless message without notes, the record is checked and the lease made
        right here. See ``_format`` for the name fields."""
        _sk, attempts_s, ma, flags, mid = name.split(".")
        if attempts_s == "0":
            attempts, attempts_s = 1, "1"
        else:
            attempts = int(attempts_s) + 1
            attempts_s = str(attempts)
        token = new_token()
        p4 = name[:4]
        # The line's availability is in the name as it is; the head's is upside down.
        avail_h = name[5:21] if name[4] == "b" else f"{F.ready_avail(name):016x}"
        new = (
            f"{eh}{_pack_q(next_seq()).hex()}.{attempts_s}.{ma}.{flags}.{mid}"
            f".{p4}.{avail_h}.{nh}.{token}.{oenc}"
        )
        qd.known.discard(name)
        byid = qd.byid
        hit = byid.pop(mid, None)
        try:
            os.rename(name, new, src_dir_fd=qd.rfd, dst_dir_fd=qd.lfd)
        except FileNotFoundError:  # another consumer won it
            return None
        if qd.durable:
            qd.fsync_dir(qd.leased)
            qd.fsync_dir(qd.ready)
        if hit is not None and hit[1] != name:
            byid[mid] = hit  # (an entry of another name: keep it)
        qd.lknown.add(new)
        byid[mid] = ("l", new)
        heapq.heappush(qd.lheap, new)
        prio = 0 if p4 == "1000" else 1000 - int(p4)
        if flags != "-":  # a key or notes: the general finish
            return self._leased(qd, new, prio, attempts, int(ma) if ma else None, flags, mid,
                                int(avail_h, 16), now, exp, owner, token)  # fmt: skip
        # A keyless message without notes: check the record, make the lease.
        try:
            rmid, created, payload = F.decode_keyless(qd.read_msg(new, qd.lfd))
            if rmid != mid:  # a reused file whose new content never reached the disk
                raise F.CorruptRecord(f"stale content of message {rmid}")
            if self._bytes_pass and payload[:1] == b"b":
                value: Any = payload[1:]  # (what the default codec's unpack does)
            else:
                value = self.codec.unpack(payload)
        except Exception as exc:  # never retried forever: it goes to the dead letters
            self._quarantine(qd, new, now, _unreadable(exc))
            return None
        qd.held[token] = new
        qd.plain[new] = exp
        # Only redeliveries are news (DESIGN §11): the first claim records nothing.
        msg = _new(Message, (
            mid, mid, value, prio, _LEASED, attempts, created, dec_hex(avail_h), exp,
            owner, None, (Event(now, "claimed", owner),) if attempts > 1 else (),
            int(ma) if ma else None,
        ))  # fmt: skip
        return _new(Lease, (mid, value, token, attempts, exp, msg))

    def _claim_expired(
        self, qd: QDir, name: str, now: float, now_k: int, exp: float, owner: Any, oenc: str
    ) -> Lease | None:
        """Take over a lease that expired (its holder died or was too slow)."""
        ln = F.parse_leased(name)
        if "k" in ln.flags:
            with qd.flocked():
                return self._take_over(qd, name, ln, now, now_k, exp, owner, oenc)
        return self._take_over(qd, name, ln, now, now_k, exp, owner, oenc)

    def _take_over(
        self,
        qd: QDir,
        name: str,
        ln: F.LeasedName,
        now: float,
        now_k: int,
        exp: float,
        owner: Any,
        oenc: str,
        resumed: bool = False,
    ) -> Lease | None:
        e = entry_of("l", name, now_k)
        if e is None or not os.path.exists(qd.leased + name):
            qd.forget(name, True)
            return None
        if e.state is _DEAD:
            self._kill(qd, e, F.dec_t(ln.exp), "lease_expired", None)
            return None
        token = new_token()
        event = Event(now, "released", "resumed by its owner") if resumed else None
        N.record(
            qd, ln.mid, "n" in ln.flags, (event or Event(F.dec_t(ln.exp), "expired", None),),
            lease=(ln.token, F.dec_t(ln.claimed), F.decode_owner(ln.owner_enc), ln.attempts),
        )  # fmt: skip
        flags = N.with_notes_flag(name).split(".")[3]
        new = F.leased_name(
            _enc(exp), next_seq(), ln.attempts + 1, ln.ma, flags, ln.mid, ln.prio, ln.exp,
            now_k, token, oenc,
        )  # fmt: skip
        follow = N.read_follow(qd, ln.mid) if "k" in ln.flags else None
        try:
            if follow is not None:
                rec = F.decode_record(QDir.read(qd.leased + name))
                data = F.encode_record(rec.mid, rec.key, rec.created_at, follow.payload)
                qd.rewrite(qd.leased, name, qd.leased, new, data)
                N.drop_follow(qd, ln.mid)
            else:
                qd.move(qd.leased, name, qd.leased, new)
        except (FileNotFoundError, F.CorruptRecord):
            qd.forget(name, True)
            return None
        qd.forget(name, True)
        qd.add_leased(new, ln.mid)  # (the hot path, _claim_ready, does this itself)
        return self._leased(qd, new, ln.prio, ln.attempts + 1, ln.ma, flags, ln.mid, ln.exp,
                            now, exp, owner, token)  # fmt: skip

    def _leased(
        self,
        qd: QDir,
        new: str,
        prio: int,
        attempts: int,
        ma: int | None,
        flags: str,
        mid: str,
        avail: int,
        now: float,
        exp: float,
        owner: str | None,
        token: str,
    ) -> Lease | None:
        """Finish a claim: read the record (quarantine a bad one), make the Lease."""
        try:
            rec = F.decode_record(qd.read_at(qd.leased, new))
            if rec.mid != mid:  # a reused file whose new content never reached the disk
                raise F.CorruptRecord(f"stale content of message {rec.mid}")
            value = self.codec.unpack(rec.payload)
        except Exception as exc:  # never retried forever: it goes to the dead letters
            self._quarantine(qd, new, now, _unreadable(exc))
            return None
        qd.held[token] = new
        # Only redeliveries are news (DESIGN §11): the first claim records nothing.
        claimed = (Event(now, "claimed", owner),) if attempts > 1 else ()
        if "n" in flags:
            notes = N.read_notes(qd, mid)
            history = (*notes.events, *claimed)[-HISTORY_LIMIT:]
            last_error = notes.last_error
        else:
            history, last_error = claimed, None
        msg = _new(Message, (
            mid, rec.key, value, prio, _LEASED, attempts, rec.created_at, F.dec_t(avail), exp,
            owner, last_error, history, ma,
        ))  # fmt: skip
        return _new(Lease, (rec.key, value, token, attempts, exp, msg))

    def _quarantine(self, qd: QDir, name: str, now: float, reason: str) -> None:
        """Dead-letter a leased file whose record cannot be read, with ``reason``."""
        e = entry_of("l", name, _enc(now))
        if e is not None:
            self._kill(qd, e, now, reason, reason)

    def claim_owned(
        self, queue: str, owner: str, *, now: float, lease_timeout: float
    ) -> list[Lease]:
        """Take back every live lease ``owner`` holds, oldest claim first, each with a
        new token, expiry and attempt: a restarted worker with a stable identity
        resumes its own in-progress work (``leaseq.compat.femtoqueue``). A file
        store extension, not part of the Store protocol."""
        qd = self._qd(queue)
        now_k = _enc(now)
        oenc = F.encode_owner(owner)
        exp = now + lease_timeout
        out: list[Lease] = []
        with qd.lock:
            mine = [e for e in scan(qd, now_k, "l") if e.state is _LEASED and e.owner == owner]
            mine.sort(key=lambda e: (e.claimed or 0, e.name))
            for e in mine:
                ln = F.parse_leased(e.name)
                ctx = qd.flocked() if "k" in ln.flags else _NOLOCK
                with ctx:
                    lease = self._take_over(qd, e.name, ln, now, now_k, exp, owner, oenc, True)
                if lease is not None:
                    out.append(lease)
        return out

    def claim_key(
        self,
        queue: str,
        key: str,
        *,
        now: float | None,
        lease_timeout: float,
        owner: str | None,
    ) -> Lease | None:
        assert now is not None
        qd = self._qd(queue)
        oenc = F.encode_owner(owner)
        now_k = _enc(now)
        exp = now + lease_timeout
        with qd.lock:
            e = self._locate_key(qd, key, now_k)
            if e is None or e.state is not _READY or e.avail > now_k:
                return None
            if e.kind == "r":
                eh, nh = hex_pair(exp, now)
                lease = self._claim_ready(qd, e.name, now, nh, exp, eh, owner, oenc)
            else:
                lease = self._claim_expired(qd, e.name, now, now_k, exp, owner, oenc)
        if lease is not None and self.notifier.waiting:
            qd.mark_own()
            self.notifier.scheduled(queue, lease.expires_at, key)
        return lease


def _unreadable(exc: Exception) -> str:
    """Why a record was quarantined: torn or stale (``corrupt``), or the serializer
    could not read its value (``undecodable``)."""
    if isinstance(exc, F.CorruptRecord):
        return f"corrupt: {exc.args[0]}"
    return f"undecodable: {type(exc).__name__}: {exc}"
