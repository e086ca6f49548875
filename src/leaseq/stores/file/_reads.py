"""Reads and maintenance of the ``file://`` store: they list the directories
(O(n)), judge each message at ``now`` and change nothing (purge and prune
aside)."""

from __future__ import annotations

import os

from leaseq._core.model import Message, Outcome, QueueStats, State
from leaseq.errors import Closed
from leaseq.stores.file import _format as F
from leaseq.stores.file import _notes as N
from leaseq.stores.file import _results as R
from leaseq.stores.file._base import (
    _DEAD,
    _LEASED,
    _READY,
    StoreBase,
    _enc,
)
from leaseq.stores.file._view import scan, snapshot

__all__ = ["Reads"]


class Reads(StoreBase):
    """Reads and maintenance of the ``file://`` store: they list the directories"""

    def get_message(self, queue: str, message_id: str, *, now: float | None) -> Message | None:
        assert now is not None
        qd = self._qd(queue)
        for e in scan(qd, _enc(now)):
            if e.mid == message_id:
                return snapshot(qd, e, self.codec)
        return None

    def peek_key(self, queue: str, key: str, *, now: float | None) -> Message | None:
        assert now is not None
        qd = self._qd(queue)
        with qd.lock:
            e = self._locate_key(qd, key, _enc(now))
        return None if e is None else snapshot(qd, e, self.codec)

    def keys(self, queue: str, state: State, *, now: float | None) -> list[str]:
        assert now is not None
        qd = self._qd(queue)
        now_k = _enc(now)
        entries = [e for e in scan(qd, now_k) if e.state is state]
        if state is _READY:
            due = sorted((e for e in entries if e.avail <= now_k), key=lambda e: e.sortkey)
            later = sorted(
                (e for e in entries if e.avail > now_k), key=lambda e: (e.avail, -e.prio)
            )
            entries = due + later
        elif state is _LEASED:
            entries.sort(key=lambda e: (e.claimed or 0, e.name))
        else:
            entries.sort(key=lambda e: (e.died or 0, e.name))
        return [k for k in (self._key_of(qd, e) for e in entries) if k is not None]

    def count_ready(self, queue: str, *, now: float | None) -> int:
        assert now is not None
        now_k = _enc(now)
        return sum(
            1 for e in scan(self._qd(queue), now_k, "rl") if e.state is _READY and e.avail <= now_k
        )

    def count_live(self, queue: str, *, now: float | None) -> int:
        assert now is not None
        return self._count_live(self._qd(queue), _enc(now))

    def dead_letters(
        self, queue: str, *, now: float | None, limit: int | None = None
    ) -> list[Message]:
        assert now is not None
        qd = self._qd(queue)
        entries = [e for e in scan(qd, _enc(now), "ld") if e.state is _DEAD]
        entries.sort(key=lambda e: (e.died or 0, e.name))
        out: list[Message] = []
        for e in entries:
            if limit is not None and len(out) >= limit:
                break
            msg = snapshot(qd, e, self.codec)
            if msg is not None:
                out.append(msg)
        return out

    def stats(self, queue: str, *, now: float | None) -> QueueStats:
        assert now is not None
        now_k = _enc(now)
        ready = delayed = leased = dead = 0
        oldest_ready: float | None = None
        oldest_leased: float | None = None
        leased_sum = 0.0
        by_owner: dict[str, int] = {}
        for e in scan(self._qd(queue), now_k):
            if e.state is _DEAD:
                dead += 1
            elif e.state is _LEASED:
                leased += 1
                age = now - F.dec_t(e.claimed or 0)
                oldest_leased = age if oldest_leased is None else max(oldest_leased, age)
                leased_sum += age
                by_owner[e.owner or ""] = by_owner.get(e.owner or "", 0) + 1
            elif e.avail > now_k:
                delayed += 1
            else:
                ready += 1
                age = now - F.dec_t(e.avail)
                oldest_ready = age if oldest_ready is None else max(oldest_ready, age)
        return QueueStats(
            ready, delayed, leased, dead, ready + delayed + leased + dead,
            oldest_ready, oldest_leased, by_owner, leased_sum / leased if leased else None,
        )  # fmt: skip

    def purge(self, queue: str) -> int:
        qd = self._qd(queue)
        n = 0
        with qd.lock, qd.flocked():
            for d in (qd.ready, qd.leased, qd.dead, qd.keys, qd.notes, qd.follow):
                for name in os.listdir(d):
                    try:
                        os.unlink(d + name)
                    except FileNotFoundError:
                        continue
                    n += d in (qd.ready, qd.leased, qd.dead)
            qd.held.clear()
            qd.relist()
        if n and self.notifier.waiting:
            qd.mark_own()
            self.notifier.space(queue, n)
        return n

    def prune_dead(self, queue: str, *, before: float) -> int:
        qd = self._qd(queue)
        limit = _enc(before)
        n = 0
        with qd.lock, qd.flocked():
            self._reap(qd, limit)
            for e in scan(qd, limit, "d"):
                if e.died is not None and e.died <= limit:
                    try:
                        os.unlink(qd.dead + e.name)
                    except FileNotFoundError:
                        continue
                    N.drop_notes(qd, e.mid)
                    n += 1
        return n

    def get_outcome(self, queue: str, key: str, *, now: float | None) -> Outcome | None:
        """The key's recorded outcome (one file read), None when absent or expired."""
        assert now is not None
        return R.read(self._qd(queue), key, self.codec, now)

    def prune_outcomes(self, queue: str, *, before: float) -> int:
        """Remove outcomes with ``expires_at <= before`` (lists ``results/``: O(n))."""
        qd = self._qd(queue)
        with qd.lock, qd.flocked():
            return R.prune(qd, before)

    def next_due(self, queue: str, *, now: float | None, key: str | None = None) -> float | None:
        assert now is not None
        qd = self._qd(queue)
        now_k = _enc(now)
        with qd.lock:
            if key is None:
                qd.sync()
                qd.refresh_leased()  # other processes' leases expire too
                due = qd.next_due(now_k)
                return None if due is None else F.dec_t(due)
            e = self._locate_key(qd, key, now_k)
        if e is None:
            return None
        if e.state is _LEASED and e.exp is not None:
            return F.dec_t(e.exp)
        return F.dec_t(e.avail) if e.avail > now_k else None

    def queues(self) -> list[str]:
        if self.closed:
            raise Closed(f"store {self.url} is closed; open a new queue")
        return self._core.queue_names()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._qds = {}
            self._core.release()
