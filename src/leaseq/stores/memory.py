"""``memory://`` — the in-process store, and the executable specification.

Every rule of the contract is encoded here in plain data structures; the
other stores encode the same rules in SQL, Lua or file renames and the
conformance suite proves they agree.

Structures (per queue):

* ``by_key`` / ``by_id``: live messages by key, every message (dead too) by id;
* one ``_Level`` per priority with two ``OrderedDict`` s: the *head* (a stack:
  released-to-front and expired messages) and the *line* (FIFO). Put,
  claim, take(key), ack, release, extend and dead-letter are O(1); finding the
  top priority is a bisect over the distinct priorities in use (at most 2001);
* ``timers``: one heap of (due time, op sequence) for delayed messages and
  lease expiries, with lazy deletion (a generation number per message) and
  compaction, so nothing is retained after an ack.

Limits: values are kept as the Python objects you put (no copy, no
serialization); ``memory://`` is private to the queue object that opened it,
``memory://NAME`` is shared by every queue opened with that URL in this
process; nothing survives the process.
"""

from __future__ import annotations

import bisect
import heapq
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult

from leaseq._core import rules
from leaseq._core.ids import process_prefix
from leaseq._core.model import HISTORY_LIMIT, Event, Lease, Message, QueueStats, State
from leaseq._waiting import Notifier
from leaseq.errors import Closed, Full, KeyExists, KeyInFlight, MessageNotFound
from leaseq.stores.base import PutRequest

__all__ = ["MemoryStore", "open_memory"]

_new = tuple.__new__
_READY, _LEASED, _DEAD = State.READY, State.LEASED, State.DEAD
_named: dict[str, MemoryStore] = {}
_named_lock = threading.Lock()
_stores: weakref.WeakSet[MemoryStore] = weakref.WeakSet()


def _after_fork() -> None:
    # A forked child must never hand out the parent's next tokens.
    for store in list(_stores):
        store._tokens.clear()


os.register_at_fork(after_in_child=_after_fork)


def open_memory(parts: SplitResult, **options: Any) -> MemoryStore:
    """``memory://`` is a new private store; ``memory://NAME`` is shared in this process."""
    for name in options:
        raise TypeError(f"memory:// takes no option {name!r}")
    name = parts.netloc + parts.path
    if not name:
        return MemoryStore()
    with _named_lock:
        store = _named.get(name)
        if store is None:
            store = _named[name] = MemoryStore(f"memory://{name}", shared=True)
        return store


class _Rec:
    """A message as the store holds it (mutable; snapshots are ``Message`` tuples)."""

    __slots__ = (
        "attempts",
        "available_at",
        "created_at",
        "dead_at",
        "follow",
        "front",
        "gen",
        "history",
        "id",
        "key",
        "last_error",
        "lease_expires_at",
        "leased_at",
        "leased_by",
        "max_attempts",
        "priority",
        "state",
        "token",
        "value",
        "where",
    )

    def __init__(self, mid: str, key: str, req: PutRequest, now: float, avail: float) -> None:
        self.id = mid
        self.key = key
        self.value = req.value
        self.priority = req.priority
        self.state = _READY
        self.attempts = 0
        self.created_at = now
        self.available_at = avail
        self.lease_expires_at: float | None = None
        self.leased_at = 0.0
        self.leased_by: str | None = None
        self.last_error: str | None = None
        self.history: tuple[Event, ...] = ()  # only the eventful: see model.Message
        self.max_attempts = req.max_attempts
        self.token: str | None = None
        self.follow: tuple[PutRequest, str] | None = None  # buffered follow-up (req, its id)
        self.front = False  # join the head (not the line) when its timer fires
        self.gen = 0  # bumped on every transition: invalidates timer entries
        self.where: OrderedDict[str, _Rec] | None = None  # the head or line holding it
        self.dead_at: float | None = None

    def event(self, at: float, kind: str, detail: str | None = None) -> None:
        h = self.history
        if len(h) >= HISTORY_LIMIT:
            h = h[1 - HISTORY_LIMIT :]
        self.history = (*h, _new(Event, (at, kind, detail)))

    def snapshot(self) -> Message:
        return _new(
            Message,
            (
                self.id,
                self.key,
                self.value,
                self.priority,
                self.state,
                self.attempts,
                self.created_at,
                self.available_at,
                self.lease_expires_at,
                self.leased_by,
                self.last_error,
                self.history,
                self.max_attempts,
            ),
        )


class _Level:
    __slots__ = ("head", "line")

    def __init__(self) -> None:
        self.head: OrderedDict[str, _Rec] = OrderedDict()
        self.line: OrderedDict[str, _Rec] = OrderedDict()


class _Queue:
    """One named queue's state. Guarded by the store's lock."""

    __slots__ = ("by_id", "by_key", "dead", "leased", "levels", "prios", "ready", "seq", "timers")

    def __init__(self) -> None:
        self.by_key: dict[str, _Rec] = {}
        self.by_id: dict[str, _Rec] = {}
        self.levels: dict[int, _Level] = {}
        self.prios: list[int] = []  # negated priorities with a non-empty level, sorted
        self.ready = 0  # messages in heads and lines
        self.leased = 0  # messages in state LEASED (expired or not)
        self.timers: list[tuple[float, int, int, _Rec]] = []  # (due, seq, gen, rec)
        self.dead: OrderedDict[str, _Rec] = OrderedDict()  # in order of death
        self.seq = 0


class MemoryStore:
    """The in-memory store. Thread-safe (one lock); every primitive is O(1) amortized."""

    inline = True
    server_clock = False
    serializes = False

    def __init__(self, url: str = "memory://", *, shared: bool = False) -> None:
        self.url = url
        self.shared = shared  # memory://NAME: lives as long as the process
        self.notifier = Notifier()
        self.closed = False
        self._lock = threading.Lock()
        # Hot paths call these directly: cheaper than ``with`` on a lock here.
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._queues: dict[str, _Queue] = {}
        self._ids = 0
        self._idp = f"m{process_prefix[-6:]}{id(self) & 0xFFFF:04x}-"
        # Tokens: a claim must not pay a system call, so they are cut in batches
        # from one block of randomness and popped under our lock.
        self._tokens: list[str] = []
        _stores.add(self)

    # -- helpers -------------------------------------------------------------------
    def _q(self, name: str) -> _Queue:
        q = self._queues.get(name)
        if q is None:
            if self.closed:
                raise Closed(f"store {self.url} is closed; open a new queue")
            q = self._queues[name] = _Queue()
        return q

    def _new_id(self) -> str:
        self._ids += 1
        return self._idp + str(self._ids)

    def _refill_tokens(self) -> list[str]:
        block = os.urandom(4096).hex()
        self._tokens = tokens = [block[i : i + 16] for i in range(0, len(block), 16)]
        return tokens

    def _enqueue(self, q: _Queue, rec: _Rec, front: bool) -> None:
        """Make ``rec`` claimable now: at the top of the head, or the back of the line."""
        p = rec.priority
        level = q.levels.get(p)
        if level is None:
            level = q.levels[p] = _Level()
        if not level.head and not level.line:
            bisect.insort(q.prios, -p)
        if front:
            od = level.head
            od[rec.key] = rec
            od.move_to_end(rec.key, last=False)
        else:
            od = level.line
            od[rec.key] = rec
        rec.where = od
        q.ready += 1

    def _dequeue(self, q: _Queue, rec: _Rec) -> None:
        """Take ``rec`` out of its head or line."""
        od = rec.where
        assert od is not None
        del od[rec.key]
        rec.where = None
        q.ready -= 1
        level = q.levels[rec.priority]
        if not level.head and not level.line:
            q.prios.remove(-rec.priority)

    def _schedule(self, q: _Queue, rec: _Rec, due: float) -> None:
        q.seq += 1
        heapq.heappush(q.timers, (due, q.seq, rec.gen, rec))
        # Compaction keeps stale entries (acked leases...) from piling up.
        if len(q.timers) > 64 and len(q.timers) > 4 * (q.leased + len(q.by_key) - q.ready):
            q.timers = [t for t in q.timers if t[3].gen == t[2]]
            heapq.heapify(q.timers)

    def _advance(self, q: _Queue, now: float) -> list[str]:
        """Apply every timer due at ``now`` in time order: delayed messages join
        their line (or head), expired leases join the head or die. Returns the
        keys that became claimable (for wake-ups)."""
        timers = q.timers
        woken: list[str] = []
        while timers and timers[0][0] <= now:
            due, _seq, gen, rec = heapq.heappop(timers)
            if rec.gen != gen:
                continue
            rec.gen += 1
            if rec.state is _LEASED:
                self._expire(q, rec, due)
                if rec.state is _READY:
                    woken.append(rec.key)
            else:
                self._enqueue(q, rec, rec.front)
                rec.front = False
                woken.append(rec.key)
        return woken

    def _expire(self, q: _Queue, rec: _Rec, at: float) -> None:
        # The token stays on the record, so its holder learns "expired", not "released".
        q.leased -= 1
        rec.leased_by = None
        if rules.after_expiry(rec.attempts, rec.max_attempts) is _DEAD:
            self._kill(q, rec, at, "lease_expired")
            return
        rec.event(at, "expired")
        self._back_in_line(q, rec, at, front=True)

    def _back_in_line(self, q: _Queue, rec: _Rec, now: float, *, front: bool) -> None:
        """A held message returns (release or expiry); a buffered follow-up's value wins."""
        rec.state = _READY
        rec.lease_expires_at = None
        if rec.follow is not None:
            rec.value = rec.follow[0].value
            rec.follow = None
        rec.available_at = now
        self._enqueue(q, rec, front)

    def _kill(self, q: _Queue, rec: _Rec, now: float, reason: str) -> None:
        """Move to DEAD. The reason goes to the history (``Message.dead_reason``);
        ``last_error`` keeps the last error, or the reason when there was none."""
        rec.state = _DEAD
        rec.dead_at = now
        rec.lease_expires_at = None
        if rec.last_error is None:
            rec.last_error = reason
        rec.event(now, "dead", reason)
        rec.follow = None
        del q.by_key[rec.key]
        q.dead[rec.id] = rec

    def _lease(self, q: _Queue, rec: _Rec, now: float, timeout: float, owner: str | None) -> Lease:
        rec.state = _LEASED
        rec.attempts += 1
        rec.token = token = (self._tokens or self._refill_tokens()).pop()
        rec.leased_by = owner
        rec.leased_at = now
        rec.lease_expires_at = exp = now + timeout
        rec.gen += 1
        if rec.attempts > 1:  # the first delivery is not news; redeliveries are
            rec.event(now, "claimed", owner)
        q.leased += 1
        self._schedule(q, rec, exp)
        key, value, attempts = rec.key, rec.value, rec.attempts
        msg = _new(
            Message,
            (
                rec.id,
                key,
                value,
                rec.priority,
                _LEASED,
                attempts,
                rec.created_at,
                rec.available_at,
                exp,
                owner,
                rec.last_error,
                rec.history,
                rec.max_attempts,
            ),
        )
        return _new(Lease, (key, value, token, attempts, exp, msg))

    def _held(self, q: _Queue, name: str, lease: Lease, now: float) -> _Rec:
        """Fencing: the record ``lease`` holds at ``now``, or LeaseLost."""
        mid = lease.message.id
        rec = q.by_id.get(mid)
        if (
            rec is not None
            and rec.token == lease.token
            and rec.lease_expires_at is not None
            and now < rec.lease_expires_at
        ):
            return rec
        rules.check_lease(
            queue=name,
            message_id=mid,
            attempt=lease.attempt,
            token=lease.token,
            found=rec is not None,
            state=None if rec is None else rec.state,
            held_token=None if rec is None else rec.token,
            lease_expires_at=None if rec is None else rec.lease_expires_at,
            now=now,
        )
        raise AssertionError("unreachable")  # check_lease raised

    def _wake(self, name: str, keys: list[str]) -> None:
        if keys and self.notifier.waiting:
            self.notifier.ready_many(name, keys)

    # -- put -----------------------------------------------------------------------
    def put(self, queue: str, req: PutRequest, *, now: float | None, maxsize: int = 0) -> Message:
        assert now is not None
        n = self.notifier
        self._acquire()
        try:
            q = self._queues.get(queue) or self._q(queue)
            timers = q.timers
            woken = self._advance(q, now) if timers and timers[0][0] <= now else None
            key = req.key
            if (
                (key is None or key not in q.by_key)
                and not req.delay
                and req.at is None
                and (not maxsize or len(q.by_key) < maxsize)
            ):
                # The common case, kept short: a new message, ready now.
                self._ids += 1  # inlined _new_id(): this is the hot path
                mid = self._idp + str(self._ids)
                if key is None:
                    key = mid
                rec = _Rec(mid, key, req, now, now)
                q.by_key[key] = rec
                q.by_id[mid] = rec
                self._enqueue(q, rec, False)
                # The snapshot from what we know: cheaper than reading the record back.
                msg = _new(
                    Message,
                    (
                        mid,
                        key,
                        req.value,
                        req.priority,
                        _READY,
                        0,
                        now,
                        now,
                        None,
                        None,
                        None,
                        (),
                        req.max_attempts,
                    ),
                )
                ready_key: str | None = key
                due = None
            else:
                msg, ready_key, due = self._put(q, queue, req, now, maxsize)
        finally:
            self._release()
        if n.waiting:
            if woken:
                n.ready_many(queue, woken)
            if ready_key is not None:
                n.ready(queue, ready_key)
            if due is not None:
                n.scheduled(queue, due, msg.key)
        return msg

    def put_many(
        self, queue: str, reqs: Sequence[PutRequest], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        assert now is not None
        out: list[Message] = []
        ready: list[str] = []
        dues: list[tuple[float, str]] = []
        with self._lock:
            q = self._q(queue)
            woken = self._advance(q, now)
            self._check_many(q, queue, reqs, now, maxsize)
            for req in reqs:
                msg, ready_key, due = self._put(q, queue, req, now, 0)
                out.append(msg)
                if ready_key is not None:
                    ready.append(ready_key)
                if due is not None:
                    dues.append((due, msg.key))
        if self.notifier.waiting:
            self.notifier.ready_many(queue, woken + ready)
            for due, key in dues:
                self.notifier.scheduled(queue, due, key)
        return out

    def _check_many(
        self, q: _Queue, name: str, reqs: Sequence[PutRequest], now: float, maxsize: int
    ) -> None:
        """Dry-run a batch so that it applies wholly or not at all."""
        seen: dict[str, State | None] = {}
        new = 0
        for req in reqs:
            key = req.key
            if key is None:
                new += 1
                continue
            if key in seen:
                state = seen[key]
            else:
                rec = q.by_key.get(key)
                state = None if rec is None else rec.state
            action = rules.decide_put(state, req.if_ready, req.if_in_flight)
            if action is rules.PutAction.REJECT_READY:
                raise KeyExists(name, key)
            if action is rules.PutAction.REJECT_HELD:
                raise KeyInFlight(name, key)
            if action is rules.PutAction.INSERT:
                new += 1
                seen[key] = _READY
            elif action is rules.PutAction.REPLACE:
                seen[key] = _READY
            else:
                seen[key] = state
        if maxsize and len(q.by_key) + new > maxsize:
            raise Full(f"queue {name!r} holds {len(q.by_key)} of {maxsize} live messages")

    def _put(
        self, q: _Queue, name: str, req: PutRequest, now: float, maxsize: int
    ) -> tuple[Message, str | None, float | None]:
        """Apply one put; return (message, key made ready now, due time if delayed)."""
        key = req.key
        rec = None if key is None else q.by_key.get(key)
        if rec is None:
            if maxsize and len(q.by_key) >= maxsize:
                raise Full(
                    f"queue {name!r} holds {maxsize} live messages (maxsize); "
                    "ack some, or put with block=True to wait"
                )
            return self._insert(q, req, now)
        action = rules.decide_put(rec.state, req.if_ready, req.if_in_flight)
        A = rules.PutAction
        if action is A.UPDATE:
            rec.value = req.value
            rec.event(now, "updated")
        elif action is A.UPDATE_HELD:
            rec.value = req.value
            rec.follow = None
            rec.event(now, "updated")
        elif action is A.REPLACE:
            self._remove_live(q, rec)
            return self._insert(q, req, now)
        elif action is A.BUFFER:
            # One follow-up slot: the newest value wins; it keeps the id it got first.
            fid = self._new_id() if rec.follow is None else rec.follow[1]
            rec.follow = (req, fid)
            rec.event(now, "buffered")
            return _Rec(fid, rec.key, req, now, now).snapshot(), None, None
        elif action is A.REJECT_READY:
            raise KeyExists(name, rec.key)
        elif action is A.REJECT_HELD:
            raise KeyInFlight(name, rec.key)
        return rec.snapshot(), None, None

    def _insert(
        self, q: _Queue, req: PutRequest, now: float, mid: str | None = None
    ) -> tuple[Message, str | None, float | None]:
        mid = mid or self._new_id()
        key = mid if req.key is None else req.key
        avail = (
            now if req.at is None and not req.delay else rules.available_at(now, req.delay, req.at)
        )
        rec = _Rec(mid, key, req, now, avail)
        q.by_key[key] = rec
        q.by_id[mid] = rec
        if avail <= now:
            self._enqueue(q, rec, False)
            return rec.snapshot(), key, None
        self._schedule(q, rec, avail)
        return rec.snapshot(), None, avail

    def _remove_live(self, q: _Queue, rec: _Rec) -> None:
        """Forget a live message entirely (replace, purge, ack)."""
        if rec.where is not None:
            self._dequeue(q, rec)
        if rec.state is _LEASED:
            q.leased -= 1
        rec.gen += 1
        rec.token = None
        del q.by_key[rec.key]
        del q.by_id[rec.id]

    # -- claims --------------------------------------------------------------------
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
        out: list[Lease] = []
        self._acquire()
        try:
            q = self._queues.get(queue) or self._q(queue)
            if q.timers and q.timers[0][0] <= now:
                self._advance(q, now)
            prios = q.prios
            levels = q.levels
            while prios and len(out) < limit:
                level = levels[-prios[0]]
                od = level.head or level.line
                rec = od.popitem(last=False)[1]
                rec.where = None
                q.ready -= 1
                if not level.head and not level.line:
                    del prios[0]
                out.append(self._lease(q, rec, now, lease_timeout, owner))
        finally:
            self._release()
        n = self.notifier
        if out and n.waiting:
            for lease in out:
                n.scheduled(queue, lease.expires_at, lease.key)
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
        with self._lock:
            q = self._q(queue)
            if q.timers and q.timers[0][0] <= now:
                self._advance(q, now)
            rec = q.by_key.get(key)
            if rec is None or rec.where is None:
                return None
            self._dequeue(q, rec)
            lease = self._lease(q, rec, now, lease_timeout, owner)
        if self.notifier.waiting:
            self.notifier.scheduled(queue, lease.expires_at, key)
        return lease

    # -- lease operations ----------------------------------------------------------
    def renew(self, queue: str, lease: Lease, *, now: float | None, seconds: float) -> Lease:
        assert now is not None
        with self._lock:
            q = self._q(queue)
            woken = self._advance(q, now) if q.timers and q.timers[0][0] <= now else []
            rec = self._held(q, queue, lease, now)
            rec.lease_expires_at = exp = now + seconds
            rec.gen += 1
            self._schedule(q, rec, exp)
            new = lease._replace(expires_at=exp, message=rec.snapshot())
        self._wake(queue, woken)
        if self.notifier.waiting:  # a shortened lease: waiters may need to wake sooner
            self.notifier.scheduled(queue, exp, lease.key)
        return new

    def ack(self, queue: str, lease: Lease, *, now: float | None) -> None:
        assert now is not None
        follow_key = None
        due = None
        self._acquire()
        try:
            q = self._queues.get(queue) or self._q(queue)
            woken = self._advance(q, now) if q.timers and q.timers[0][0] <= now else None
            rec = q.by_id.get(lease.message.id)
            if (
                rec is None
                or rec.token != lease.token
                or rec.lease_expires_at is None
                or now >= rec.lease_expires_at
            ):
                rec = self._held(q, queue, lease, now)  # raises LeaseLost with the reason
            # Forget it (it is LEASED, so in no head or line).
            rec.gen += 1
            rec.token = None
            q.leased -= 1
            del q.by_key[rec.key]
            del q.by_id[rec.id]
            follow = rec.follow
            if follow is not None:
                req, fid = follow
                _msg, follow_key, due = self._insert(q, req._replace(key=rec.key), now, fid)
        finally:
            self._release()
        n = self.notifier
        if n.waiting:
            if woken:
                n.ready_many(queue, woken)
            if follow_key is not None:
                n.ready(queue, follow_key)
            elif due is not None:
                n.scheduled(queue, due, rec.key)
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
        with self._lock:
            q = self._q(queue)
            woken = self._advance(q, now) if q.timers and q.timers[0][0] <= now else []
            rec = self._held(q, queue, lease, now)
            rec.gen += 1
            q.leased -= 1
            rec.token = None
            rec.leased_by = None
            if error is not None:
                rec.last_error = error
            if rules.after_release(rec.attempts, rec.max_attempts) is _DEAD:
                self._kill(q, rec, now, "max_attempts")
                msg = rec.snapshot()
                ready_key, due, freed = None, None, True
            else:
                rec.event(now, "released", error)
                freed = False
                if delay > 0:
                    rec.state = _READY
                    rec.lease_expires_at = None
                    if rec.follow is not None:
                        rec.value = rec.follow[0].value
                        rec.follow = None
                    rec.available_at = due = now + delay
                    rec.front = front
                    self._schedule(q, rec, due)
                    ready_key = None
                else:
                    self._back_in_line(q, rec, now, front=front)
                    ready_key, due = rec.key, None
                msg = rec.snapshot()
        self._wake(queue, woken)
        n = self.notifier
        if n.waiting:
            if ready_key is not None:
                n.ready(queue, ready_key)
            if due is not None:
                n.scheduled(queue, due, msg.key)
            if freed:
                n.space(queue)
        return msg

    def dead_letter(
        self, queue: str, lease: Lease, *, now: float | None, error: str | None = None
    ) -> Message:
        assert now is not None
        with self._lock:
            q = self._q(queue)
            woken = self._advance(q, now) if q.timers and q.timers[0][0] <= now else []
            rec = self._held(q, queue, lease, now)
            rec.gen += 1
            q.leased -= 1
            rec.token = None
            rec.leased_by = None
            rec.last_error = error if error is not None else rec.last_error
            self._kill(q, rec, now, error if error is not None else "dead_lettered")
            msg = rec.snapshot()
        self._wake(queue, woken)
        if self.notifier.waiting:
            self.notifier.space(queue)
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
        with self._lock:
            q = self._q(queue)
            self._advance(q, now)
            rec = q.dead.get(message_id)
            if rec is None:
                raise MessageNotFound(queue, message_id, "dead letter")
            if rec.key in q.by_key:
                raise KeyExists(queue, rec.key)
            del q.dead[message_id]
            q.by_key[rec.key] = rec
            rec.state = _READY
            rec.dead_at = None
            rec.gen += 1
            if reset_attempts:
                rec.attempts = 0
            rec.event(now, "requeued")
            rec.available_at = avail = now + delay
            if delay > 0:
                self._schedule(q, rec, avail)
            else:
                self._enqueue(q, rec, False)
            msg = rec.snapshot()
        if self.notifier.waiting:
            if delay > 0:
                self.notifier.scheduled(queue, avail, msg.key)
            else:
                self.notifier.ready(queue, msg.key)
        return msg

    # -- reads ---------------------------------------------------------------------
    # Reads apply due timers first (a pure function of time: the same answer any
    # store gives for logical expiry) and never change anything else.
    def _read(self, name: str, now: float | None) -> _Queue | None:
        q = self._queues.get(name)
        if q is not None and now is not None and q.timers and q.timers[0][0] <= now:
            woken = self._advance(q, now)
            if woken and self.notifier.waiting:
                # Can't call the notifier under our lock from here; a waiter will
                # recheck at its own due time anyway. Nothing is lost.
                pass
        return q

    def get_message(self, queue: str, message_id: str, *, now: float | None) -> Message | None:
        with self._lock:
            q = self._read(queue, now)
            rec = None if q is None else q.by_id.get(message_id)
            return None if rec is None else rec.snapshot()

    def peek_key(self, queue: str, key: str, *, now: float | None) -> Message | None:
        with self._lock:
            q = self._read(queue, now)
            rec = None if q is None else q.by_key.get(key)
            return None if rec is None else rec.snapshot()

    def keys(self, queue: str, state: State, *, now: float | None) -> list[str]:
        with self._lock:
            q = self._read(queue, now)
            if q is None:
                return []
            if state is _DEAD:
                return [r.key for r in q.dead.values()]
            if state is _LEASED:
                return [k for k, r in q.by_key.items() if r.state is _LEASED]
            out: list[str] = []
            for p in q.prios:
                level = q.levels[-p]
                out.extend(level.head)
                out.extend(level.line)
            delayed = [r for r in q.by_key.values() if r.state is _READY and r.where is None]
            delayed.sort(key=lambda r: (r.available_at, -r.priority))
            out.extend(r.key for r in delayed)
            return out

    def count_ready(self, queue: str, *, now: float | None) -> int:
        with self._lock:
            q = self._read(queue, now)
            return 0 if q is None else q.ready

    def count_live(self, queue: str, *, now: float | None) -> int:
        with self._lock:
            q = self._read(queue, now)
            return 0 if q is None else len(q.by_key)

    def dead_letters(
        self, queue: str, *, now: float | None, limit: int | None = None
    ) -> list[Message]:
        with self._lock:
            q = self._read(queue, now)
            if q is None:
                return []
            out: list[Message] = []
            for rec in q.dead.values():
                if limit is not None and len(out) >= limit:
                    break
                out.append(rec.snapshot())
            return out

    def stats(self, queue: str, *, now: float | None) -> QueueStats:
        assert now is not None
        with self._lock:
            q = self._read(queue, now)
            if q is None:
                return QueueStats(0, 0, 0, 0, 0, None, None, {})
            oldest_ready: float | None = None
            oldest_leased: float | None = None
            by_owner: dict[str, int] = {}
            delayed = 0
            for rec in q.by_key.values():
                if rec.state is _LEASED:
                    age = now - rec.leased_at
                    oldest_leased = age if oldest_leased is None else max(oldest_leased, age)
                    owner = rec.leased_by or ""
                    by_owner[owner] = by_owner.get(owner, 0) + 1
                elif rec.where is None:
                    delayed += 1
                else:
                    age = now - rec.available_at
                    oldest_ready = age if oldest_ready is None else max(oldest_ready, age)
            live = len(q.by_key)
            return QueueStats(
                ready=q.ready,
                delayed=delayed,
                leased=q.leased,
                dead=len(q.dead),
                total=live + len(q.dead),
                oldest_ready_age=oldest_ready,
                oldest_leased_age=oldest_leased,
                by_owner=by_owner,
            )

    # -- maintenance ---------------------------------------------------------------
    def purge(self, queue: str) -> int:
        with self._lock:
            q = self._queues.pop(queue, None)
            n = 0 if q is None else len(q.by_key) + len(q.dead)
        if n and self.notifier.waiting:
            self.notifier.space(queue, n)
        return n

    def prune_dead(self, queue: str, *, before: float) -> int:
        with self._lock:
            q = self._queues.get(queue)
            if q is None:
                return 0
            doomed = [mid for mid, r in q.dead.items() if (r.dead_at or 0.0) <= before]
            for mid in doomed:
                del q.dead[mid]
                del q.by_id[mid]
            return len(doomed)

    def next_due(self, queue: str, *, now: float | None, key: str | None = None) -> float | None:
        with self._lock:
            q = self._queues.get(queue)
            if q is None:
                return None
            if key is not None:
                rec = q.by_key.get(key)
                if rec is None or rec.where is not None:
                    return None
                return rec.lease_expires_at if rec.state is _LEASED else rec.available_at
            timers = q.timers
            while timers and timers[0][3].gen != timers[0][2]:
                heapq.heappop(timers)  # drop stale entries (acked leases...)
            return timers[0][0] if timers else None

    def queues(self) -> list[str]:
        with self._lock:
            return [n for n, q in self._queues.items() if q.by_key or q.dead]

    def close(self) -> None:
        # A named store is shared by every queue of the process: closing one queue
        # must not break the others, so only a private store closes.
        if not self.shared:
            self.closed = True
