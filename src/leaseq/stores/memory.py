"""``memory://`` — the in-process store, and the executable specification.

Every rule of the contract is encoded here in plain data structures; the
other stores encode the same rules in SQL, Lua or file renames and the
conformance suite proves they agree.

Structures (per queue):

* ``by_key``: live messages by key (a keyless message's key is its id);
  ``dead``: dead messages by id. There is no map by id for live messages: a
  keyed message's id ends with ``:<key>`` (``m3f09a1c2-17:user-42``), so
  finding it by id is one lookup by key. A put and an ack touch one dict;
* one ``_Level`` per priority with two ``OrderedDict`` s: the *head* (a stack:
  released-to-front and expired messages) and the *line* (FIFO). Put,
  claim, take(key), ack, release, extend and dead-letter are O(1); finding the
  top priority is a bisect over the distinct priorities in use (at most 2001);
  a level that empties stays listed until a claim meets it (at most one empty
  ``_Level`` per priority ever used is kept until then);
* a record is a plain 20-slot list (``_ID``, ``_KEY``... index it): cheaper to
  build and free than an object, and the put+get+ack cycle makes one each time;
* ``outcomes`` (per store, by queue then key): the results ledger, written
  under the same lock as the ack or dead-letter that settles the key;
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
import functools
import heapq
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from heapq import heappush
from queue import SimpleQueue
from typing import Any
from urllib.parse import SplitResult

from leaseq._core import rules
from leaseq._core.ids import process_prefix
from leaseq._core.model import HISTORY_LIMIT, Event, Lease, Message, Outcome, QueueStats, State
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
    for store in list(_stores):
        # A forked child must never hand out the parent's next tokens.
        store._tokens.clear()
        # Only the forking thread lives on: a lock another thread held is free.
        if store._lock.empty():
            store._lock.put(None)


class _Mutex(SimpleQueue[None]):
    """The store's lock: a queue holding one token (acquire takes it, release puts
    it back), for speed. Taking from a non-empty ``SimpleQueue`` costs no system
    call and no argument parsing, where ``threading.Lock.acquire`` costs both.
    ``with`` works as on a lock."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()
        self.put(None)

    __enter__ = SimpleQueue.get

    def __exit__(self, *exc: object) -> None:
        self.put(None)


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


# A message as the store holds it: a plain list indexed by the constants below.
# Building a 20-item list costs well under half of a ``__slots__`` object's
# ``__init__`` (and its deallocation), and every put makes one. The first 13
# slots are ``Message``'s fields in order, so a snapshot is one slice.
_Rec = list[Any]
(
    _ID,
    _KEY,
    _VALUE,
    _PRIORITY,
    _STATE,
    _ATTEMPTS,
    _CREATED_AT,
    _AVAILABLE_AT,
    _LEASE_EXPIRES_AT,  # float | None
    _LEASED_BY,  # str | None
    _LAST_ERROR,  # str | None
    _HISTORY,  # tuple[Event, ...]: only the eventful, see model.Message
    _MAX_ATTEMPTS,
    _LEASED_AT,
    _TOKEN,  # str | None
    _FOLLOW,  # buffered follow-up (PutRequest, its id) | None
    _FRONT,  # join the head (not the line) when its timer fires
    _GEN,  # bumped on every transition: invalidates timer entries
    _WHERE,  # the head or line OrderedDict holding it, or None
    _DEAD_AT,  # float | None
) = range(20)
assert _MAX_ATTEMPTS == 12  # _snapshot reads slots 0..12 as Message's fields


def _new_rec(mid: str, key: str, req: PutRequest, now: float, avail: float) -> _Rec:
    # Keep in step with the inlined copies in MemoryStore.put and _memory_fast.face_ops.
    return [
        mid, key, req.value, req.priority, _READY, 0, now, avail, None, None, None, (),
        req.max_attempts, 0.0, None, None, False, 0, None, None,
    ]  # fmt: skip


def _pop_ready(q: _Queue) -> _Rec | None:
    """Take the first READY record in delivery order off its line (None: none is)."""
    prios, levels = q.prios, q.levels
    while prios:
        p = -prios[0]
        level = levels[p]
        od = level.head or level.line
        if not od:  # an emptied level, dropped lazily (see _Queue.prios)
            del prios[0]
            del levels[p]
            continue
        rec = od.popitem(last=False)[1]
        rec[_WHERE] = None
        q.ready -= 1
        return rec
    return None


def _event(rec: _Rec, at: float, kind: str, detail: str | None = None) -> None:
    h = rec[_HISTORY]
    if len(h) >= HISTORY_LIMIT:
        h = h[1 - HISTORY_LIMIT :]
    rec[_HISTORY] = (*h, _new(Event, (at, kind, detail)))


def _snapshot(rec: _Rec) -> Message:
    # Thirteen loads into a tuple: cheaper than slicing (a list, then a copy).
    r = rec
    return _new(
        Message, (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12])
    )


class _Level:
    __slots__ = ("head", "line")

    def __init__(self) -> None:
        self.head: OrderedDict[str, _Rec] = OrderedDict()
        self.line: OrderedDict[str, _Rec] = OrderedDict()


class _Queue:
    """One named queue's state. Guarded by the store's lock."""

    __slots__ = ("by_key", "dead", "leased", "levels", "prios", "ready", "seq", "timers")

    def __init__(self) -> None:
        self.by_key: dict[str, _Rec] = {}
        self.levels: dict[int, _Level] = {}
        # Negated priorities of the levels in ``levels``, sorted. A level that empties
        # stays listed until a claim finds it empty at the top (lazy: a queue that
        # drains and refills pays no bisect per put).
        self.prios: list[int] = []
        self.ready = 0  # messages in heads and lines
        self.leased = 0  # messages in state LEASED (expired or not)
        self.timers: list[tuple[float, int, int, _Rec]] = []  # (due, seq, gen, rec)
        self.dead: OrderedDict[str, _Rec] = OrderedDict()  # in order of death
        self.seq = 0

    def clear(self) -> int:
        """Forget every message, live and dead; return how many there were.

        In place: the faces' fast path holds these structures (not the store's
        map of queues), so a purged queue must stay the same object."""
        n = len(self.by_key) + len(self.dead)
        for d in (self.by_key, self.levels, self.dead):
            d.clear()
        self.prios.clear()
        self.timers = []
        self.ready = self.leased = 0
        return n

    def find(self, mid: str) -> _Rec | None:
        """The message with this id, live or dead (None: acked, pruned or never)."""
        _, keyed, key = mid.partition(":")  # see _new_id: a keyed id ends with its key
        rec = self.by_key.get(key if keyed else mid)
        if rec is not None and rec[_ID] == mid:
            return rec
        return self.dead.get(mid)

    def forget(self, rec: _Rec) -> None:
        """Drop a live message from the key map."""
        del self.by_key[rec[_KEY]]


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
        self._lock = _Mutex()
        # Hot paths call these directly: cheaper than ``with`` (see _Mutex).
        self._acquire = self._lock.get
        self._release = functools.partial(self._lock.put, None)
        self._queues: dict[str, _Queue] = {}
        self._ids = 0
        self._idp = f"m{process_prefix[-6:]}{id(self) & 0xFFFF:04x}-"
        # Tokens: a claim must not pay a system call, so they are cut in batches
        # from one block of randomness and popped under our lock.
        self._tokens: list[str] = []
        self._outcomes: dict[str, dict[str, Outcome]] = {}
        _stores.add(self)

    def face_ops(
        self, face: Any, slow_put: Any, slow_get: Any, slow_ack: Any
    ) -> tuple[Any, Any, Any]:
        """The faces' fused put/get/ack for ``face`` (see ``stores._memory_fast``)."""
        from leaseq.stores._memory_fast import face_ops

        return face_ops(self, face, slow_put, slow_get, slow_ack)

    # -- helpers -------------------------------------------------------------------
    def _q(self, name: str) -> _Queue:
        q = self._queues.get(name)
        if q is None:
            if self.closed:
                raise Closed(f"store {self.url} is closed; open a new queue")
            q = self._queues[name] = _Queue()
        return q

    def _new_id(self, key: str | None) -> str:
        """A new message id; a keyed message's ends with ``:<key>`` (see ``find``)."""
        self._ids += 1
        mid = self._idp + str(self._ids)  # the prefix holds no ":"
        return mid if key is None else f"{mid}:{key}"

    def _refill_tokens(self) -> list[str]:
        block = os.urandom(4096).hex()
        self._tokens = tokens = [block[i : i + 16] for i in range(0, len(block), 16)]
        return tokens

    def _enqueue(self, q: _Queue, rec: _Rec, front: bool) -> None:
        """Make ``rec`` claimable now: at the top of the head, or the back of the line."""
        p = rec[_PRIORITY]
        level = q.levels.get(p) or self._new_level(q, p)
        if front:
            od = level.head
            od[rec[_KEY]] = rec
            od.move_to_end(rec[_KEY], last=False)
        else:
            od = level.line
            od[rec[_KEY]] = rec
        rec[_WHERE] = od
        q.ready += 1

    @staticmethod
    def _new_level(q: _Queue, p: int) -> _Level:
        level = q.levels[p] = _Level()
        bisect.insort(q.prios, -p)
        return level

    def _dequeue(self, q: _Queue, rec: _Rec) -> None:
        """Take ``rec`` out of its head or line (its level stays listed: see ``prios``)."""
        od = rec[_WHERE]
        assert od is not None
        del od[rec[_KEY]]
        rec[_WHERE] = None
        q.ready -= 1

    def _schedule(self, q: _Queue, rec: _Rec, due: float) -> None:
        q.seq = seq = q.seq + 1
        timers = q.timers
        heappush(timers, (due, seq, rec[_GEN], rec))
        if len(timers) > 64:
            self._compact(q)

    @staticmethod
    def _compact(q: _Queue) -> None:
        # Keeps stale entries (acked leases...) from piling up.
        if len(q.timers) > 4 * (q.leased + len(q.by_key) - q.ready):
            q.timers = [t for t in q.timers if t[3][_GEN] == t[2]]
            heapq.heapify(q.timers)

    def _advance(self, q: _Queue, now: float) -> list[str]:
        """Apply every timer due at ``now`` in time order: delayed messages join
        their line (or head), expired leases join the head or die. Returns the
        keys that became claimable (for wake-ups)."""
        timers = q.timers
        woken: list[str] = []
        while timers and timers[0][0] <= now:
            due, _seq, gen, rec = heapq.heappop(timers)
            if rec[_GEN] != gen:
                continue
            rec[_GEN] += 1
            if rec[_STATE] is _LEASED:
                self._expire(q, rec, due)
                follow = q.by_key.get(rec[_KEY])
                if follow is not None and follow[_WHERE] is not None:
                    woken.append(rec[_KEY])  # back in line, or its follow-up took its place
            else:
                self._enqueue(q, rec, rec[_FRONT])
                rec[_FRONT] = False
                woken.append(rec[_KEY])
        return woken

    def _expire(self, q: _Queue, rec: _Rec, at: float) -> None:
        # The token stays on the record, so its holder learns "expired", not "released".
        q.leased -= 1
        rec[_LEASED_BY] = None
        if rules.after_expiry(rec[_ATTEMPTS], rec[_MAX_ATTEMPTS]) is _DEAD:
            self._kill(q, rec, at, "lease_expired")  # a follow-up is READY: see _advance
            return
        _event(rec, at, "expired")
        self._back_in_line(q, rec, at, front=True)

    def _back_in_line(self, q: _Queue, rec: _Rec, now: float, *, front: bool) -> None:
        """A held message returns (release or expiry); a buffered follow-up's value wins."""
        rec[_STATE] = _READY
        rec[_LEASE_EXPIRES_AT] = None
        if rec[_FOLLOW] is not None:
            rec[_VALUE] = rec[_FOLLOW][0].value
            rec[_FOLLOW] = None
        rec[_AVAILABLE_AT] = now
        self._enqueue(q, rec, front)

    def _kill(
        self, q: _Queue, rec: _Rec, now: float, reason: str
    ) -> tuple[str | None, float | None]:
        """Move to DEAD. The reason goes to the history (``Message.dead_reason``);
        ``last_error`` keeps the last error, or the reason when there was none.

        A buffered follow-up is news the producer wants delivered: it becomes a
        fresh message of the key (its own id, no attempts). Returns (key made
        ready now, due time if the follow-up is delayed) for wake-ups."""
        rec[_STATE] = _DEAD
        rec[_DEAD_AT] = now
        rec[_LEASE_EXPIRES_AT] = None
        if rec[_LAST_ERROR] is None:
            rec[_LAST_ERROR] = reason
        _event(rec, now, "dead", reason)
        follow, rec[_FOLLOW] = rec[_FOLLOW], None
        q.forget(rec)
        q.dead[rec[_ID]] = rec
        if follow is None:
            return None, None
        req, fid = follow
        _msg, ready_key, due = self._insert(q, req._replace(key=rec[_KEY]), now, fid)
        return ready_key, due

    def _lease(self, q: _Queue, rec: _Rec, now: float, timeout: float, owner: str | None) -> Lease:
        rec[_STATE] = _LEASED
        rec[_ATTEMPTS] = attempts = rec[_ATTEMPTS] + 1
        rec[_TOKEN] = token = (self._tokens or self._refill_tokens()).pop()
        rec[_LEASED_BY] = owner
        rec[_LEASED_AT] = now
        rec[_LEASE_EXPIRES_AT] = exp = now + timeout
        rec[_GEN] += 1
        if attempts > 1:  # the first delivery is not news; redeliveries are
            _event(rec, now, "claimed", owner)
        q.leased += 1
        q.seq = seq = q.seq + 1  # _schedule inlined: a claim is a hot path
        timers = q.timers
        heappush(timers, (exp, seq, rec[_GEN], rec))
        if len(timers) > 64:
            self._compact(q)
        key, value = rec[_KEY], rec[_VALUE]
        msg = _new(
            Message,
            (
                rec[_ID],
                key,
                value,
                rec[_PRIORITY],
                _LEASED,
                attempts,
                rec[_CREATED_AT],
                rec[_AVAILABLE_AT],
                exp,
                owner,
                rec[_LAST_ERROR],
                rec[_HISTORY],
                rec[_MAX_ATTEMPTS],
            ),
        )
        return _new(Lease, (key, value, token, attempts, exp, msg))

    def _held(self, q: _Queue, name: str, lease: Lease, now: float) -> _Rec:
        """Fencing: the record ``lease`` holds at ``now``, or LeaseLost."""
        mid = lease.message.id
        rec = q.find(mid)
        if (
            rec is not None
            and rec[_TOKEN] == lease.token
            and rec[_LEASE_EXPIRES_AT] is not None
            and now < rec[_LEASE_EXPIRES_AT]
        ):
            return rec
        rules.check_lease(
            queue=name,
            message_id=mid,
            attempt=lease.attempt,
            token=lease.token,
            found=rec is not None,
            state=None if rec is None else rec[_STATE],
            held_token=None if rec is None else rec[_TOKEN],
            lease_expires_at=None if rec is None else rec[_LEASE_EXPIRES_AT],
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
            # One unpacking: a named field read is an uncached descriptor call
            # (CPython does not specialize them), several times this.
            value, key, p, delay, at, _, _, max_attempts = req
            if (
                (key is None or key not in q.by_key)
                and not delay
                and at is None
                and (not maxsize or len(q.by_key) < maxsize)
            ):
                # The common case, kept short (the runner's submissions come here;
                # the faces' plain puts take _memory_fast's copy of this branch).
                self._ids = i = self._ids + 1  # _new_id inlined: this is the hot path
                if key is None:
                    key = mid = f"{self._idp}{i}"
                else:
                    mid = f"{self._idp}{i}:{key}"
                # The record inlined (see _new_rec): a call would cost a frame.
                line = (q.levels.get(p) or self._new_level(q, p)).line
                rec = [
                    mid, key, value, p, _READY, 0, now, now, None, None, None,
                    (), max_attempts, 0.0, None, None, False, 0, line, None,
                ]  # fmt: skip
                q.by_key[key] = rec
                line[key] = rec  # the back of its line: _enqueue inlined
                q.ready += 1
                # The snapshot from what we know: cheaper than reading the record back.
                msg = _new(
                    Message,
                    (mid, key, value, p, _READY, 0, now, now, None, None, None, (), max_attempts),
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

    def publish(
        self, items: Sequence[tuple[str, PutRequest]], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        assert now is not None
        by_queue: dict[str, list[PutRequest]] = {}
        for name, req in items:
            by_queue.setdefault(name, []).append(req)
        out: list[Message] = []
        ready: list[tuple[str, str]] = []
        dues: list[tuple[str, float, str]] = []
        with self._lock:
            for name, reqs in by_queue.items():  # dry-run every queue first: all or none
                q = self._q(name)
                self._advance(q, now)
                self._check_many(q, name, reqs, now, maxsize)
            for name, req in items:
                msg, ready_key, due = self._put(self._queues[name], name, req, now, 0)
                out.append(msg)
                if ready_key is not None:
                    ready.append((name, ready_key))
                if due is not None:
                    dues.append((name, due, msg.key))
        n = self.notifier
        if n.waiting:
            for name, key in ready:
                n.ready(name, key)
            for name, due, key in dues:
                n.scheduled(name, due, key)
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
                state = None if rec is None else rec[_STATE]
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
        action = rules.decide_put(rec[_STATE], req.if_ready, req.if_in_flight)
        A = rules.PutAction
        if action is A.UPDATE:
            rec[_VALUE] = req.value
            _event(rec, now, "updated")
        elif action is A.UPDATE_HELD:
            rec[_VALUE] = req.value
            rec[_FOLLOW] = None
            _event(rec, now, "updated")
        elif action is A.REPLACE:
            self._remove_live(q, rec)
            return self._insert(q, req, now)
        elif action is A.BUFFER:
            # One follow-up slot: the newest value wins; it keeps the id it got first.
            fid = self._new_id(rec[_KEY]) if rec[_FOLLOW] is None else rec[_FOLLOW][1]
            rec[_FOLLOW] = (req, fid)
            _event(rec, now, "buffered")
            return _snapshot(_new_rec(fid, rec[_KEY], req, now, now)), None, None
        elif action is A.REJECT_READY:
            raise KeyExists(name, rec[_KEY])
        elif action is A.REJECT_HELD:
            raise KeyInFlight(name, rec[_KEY])
        return _snapshot(rec), None, None

    def _insert(
        self, q: _Queue, req: PutRequest, now: float, mid: str | None = None
    ) -> tuple[Message, str | None, float | None]:
        mid = mid or self._new_id(req.key)
        key = mid if req.key is None else req.key
        avail = (
            now if req.at is None and not req.delay else rules.available_at(now, req.delay, req.at)
        )
        rec = _new_rec(mid, key, req, now, avail)
        q.by_key[key] = rec
        if avail <= now:
            self._enqueue(q, rec, False)
            return _snapshot(rec), key, None
        self._schedule(q, rec, avail)
        return _snapshot(rec), None, avail

    def _remove_live(self, q: _Queue, rec: _Rec) -> None:
        """Forget a live message entirely (replace, purge, ack)."""
        if rec[_WHERE] is not None:
            self._dequeue(q, rec)
        if rec[_STATE] is _LEASED:
            q.leased -= 1
        rec[_GEN] += 1
        rec[_TOKEN] = None
        q.forget(rec)

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
            while (rec := _pop_ready(q)) is not None:
                lease = self._lease(q, rec, now, lease_timeout, owner)
                if limit == 1:  # get(): the common case, without append and len
                    out = [lease]
                    break
                out.append(lease)
                if len(out) >= limit:
                    break
        finally:
            self._release()
        n = self.notifier
        if out and n.waiting:
            for lease in out:
                n.scheduled(queue, lease.expires_at, lease.key)
        return out

    def pop_next(self, queue: str, *, now: float | None) -> Any:
        """Remove the next claimable message and return its value (None: nothing is
        claimable): a claim and its ack in one step, with no lease.

        Not part of the store protocol: only a consumer in this process that can
        never lose what it took (the task runner) may skip the lease. It saves
        what a lease costs (a token, an expiry timer, the ``Lease`` and its
        snapshot, the ack's fencing) on every message. Values must not be None.
        """
        assert now is not None
        self._acquire()
        try:
            q = self._queues.get(queue) or self._q(queue)
            if q.timers and q.timers[0][0] <= now:
                self._advance(q, now)
            rec = _pop_ready(q)
            if rec is None:
                return None
            rec[_GEN] += 1  # any timer entry left for it is stale now
            q.forget(rec)  # (only a held message buffers a follow-up)
        finally:
            self._release()
        if self.notifier.waiting:
            self.notifier.space(queue)
        return rec[_VALUE]

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
            if rec is None or rec[_WHERE] is None:
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
            rec[_LEASE_EXPIRES_AT] = exp = now + seconds
            rec[_GEN] += 1
            self._schedule(q, rec, exp)
            new = lease._replace(expires_at=exp, message=_snapshot(rec))
        self._wake(queue, woken)
        if self.notifier.waiting:  # a shortened lease: waiters may need to wake sooner
            self.notifier.scheduled(queue, exp, lease.key)
        return new

    def ack(
        self, queue: str, lease: Lease, *, now: float | None, outcome: Outcome | None = None
    ) -> None:
        assert now is not None
        follow_key = None
        due = None
        self._acquire()
        try:
            q = self._queues.get(queue) or self._q(queue)
            woken = self._advance(q, now) if q.timers and q.timers[0][0] <= now else None
            # By key, not id: one dict serves keyless messages. The token tells this
            # lease's record from a later message of the same key.
            rec = q.by_key.get(lease.key)
            if (
                rec is None
                or rec[_TOKEN] != lease.token
                or rec[_LEASE_EXPIRES_AT] is None
                or now >= rec[_LEASE_EXPIRES_AT]
            ):
                rec = self._held(q, queue, lease, now)  # raises LeaseLost with the reason
            # Forget it (it is LEASED, so in no head or line).
            rec[_GEN] += 1
            timers = q.timers
            if timers and timers[-1][3] is rec:
                # Its expiry timer is the heap's last entry (the usual case when one
                # task cycles): dropping the last entry keeps the heap valid, and
                # saves carrying a stale entry to the next compaction.
                timers.pop()
            rec[_TOKEN] = None
            q.leased -= 1
            del q.by_key[rec[_KEY]]  # q.forget(rec) inlined: the hot path
            follow = rec[_FOLLOW]
            if follow is not None:
                req, fid = follow
                _msg, follow_key, due = self._insert(q, req._replace(key=rec[_KEY]), now, fid)
            if outcome is not None:
                self._record(queue, outcome)
        finally:
            self._release()
        n = self.notifier
        if n.waiting:
            if outcome is not None:
                n.settled(queue, outcome.key)
            if woken:
                n.ready_many(queue, woken)
            if follow_key is not None:
                n.ready(queue, follow_key)
            elif due is not None:
                n.scheduled(queue, due, rec[_KEY])
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
            rec[_GEN] += 1
            q.leased -= 1
            rec[_TOKEN] = None
            rec[_LEASED_BY] = None
            if error is not None:
                rec[_LAST_ERROR] = error
            if rules.after_release(rec[_ATTEMPTS], rec[_MAX_ATTEMPTS]) is _DEAD:
                ready_key, due = self._kill(q, rec, now, "max_attempts")
                msg = _snapshot(rec)
                freed = ready_key is None and due is None
            else:
                _event(rec, now, "released", error)
                freed = False
                if delay > 0:
                    rec[_STATE] = _READY
                    rec[_LEASE_EXPIRES_AT] = None
                    if rec[_FOLLOW] is not None:
                        rec[_VALUE] = rec[_FOLLOW][0].value
                        rec[_FOLLOW] = None
                    rec[_AVAILABLE_AT] = due = now + delay
                    rec[_FRONT] = front
                    self._schedule(q, rec, due)
                    ready_key = None
                else:
                    self._back_in_line(q, rec, now, front=front)
                    ready_key, due = rec[_KEY], None
                msg = _snapshot(rec)
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
        self,
        queue: str,
        lease: Lease,
        *,
        now: float | None,
        error: str | None = None,
        outcome: Outcome | None = None,
    ) -> Message:
        assert now is not None
        with self._lock:
            q = self._q(queue)
            woken = self._advance(q, now) if q.timers and q.timers[0][0] <= now else []
            rec = self._held(q, queue, lease, now)
            rec[_GEN] += 1
            q.leased -= 1
            rec[_TOKEN] = None
            rec[_LEASED_BY] = None
            rec[_LAST_ERROR] = error if error is not None else rec[_LAST_ERROR]
            reason = error if error is not None else "dead_lettered"
            ready_key, due = self._kill(q, rec, now, reason)
            if outcome is not None:
                self._record(queue, outcome)
            msg = _snapshot(rec)
        self._wake(queue, woken)
        n = self.notifier
        if n.waiting:
            if ready_key is not None:
                n.ready(queue, ready_key)
            elif due is not None:
                n.scheduled(queue, due, msg.key)
            else:
                n.space(queue)
            if outcome is not None:
                n.settled(queue, outcome.key)
        return msg

    # -- results ledger ------------------------------------------------------------
    def _record(self, queue: str, outcome: Outcome) -> None:
        ledger = self._outcomes.get(queue)
        if ledger is None:
            ledger = self._outcomes[queue] = {}
        ledger[outcome.key] = outcome

    def get_outcome(self, queue: str, key: str, *, now: float | None) -> Outcome | None:
        with self._lock:
            if self.closed:
                raise Closed(f"store {self.url} is closed; open a new queue")
            ledger = self._outcomes.get(queue)
            got = None if ledger is None else ledger.get(key)
        if got is None or got.expires_at is None or now is None:
            return got
        return None if got.expires_at <= now else got

    def prune_outcomes(self, queue: str, *, before: float) -> int:
        with self._lock:
            ledger = self._outcomes.get(queue)
            if not ledger:
                return 0
            doomed = [
                k for k, o in ledger.items() if o.expires_at is not None and o.expires_at <= before
            ]
            for k in doomed:
                del ledger[k]
            return len(doomed)

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
            if rec[_KEY] in q.by_key:
                raise KeyExists(queue, rec[_KEY])
            del q.dead[message_id]
            q.by_key[rec[_KEY]] = rec
            rec[_STATE] = _READY
            rec[_DEAD_AT] = None
            rec[_GEN] += 1
            if reset_attempts:
                rec[_ATTEMPTS] = 0
            _event(rec, now, "requeued")
            rec[_AVAILABLE_AT] = avail = now + delay
            if delay > 0:
                self._schedule(q, rec, avail)
            else:
                self._enqueue(q, rec, False)
            msg = _snapshot(rec)
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
            rec = None if q is None else q.find(message_id)
            return None if rec is None else _snapshot(rec)

    def peek_key(self, queue: str, key: str, *, now: float | None) -> Message | None:
        with self._lock:
            q = self._read(queue, now)
            rec = None if q is None else q.by_key.get(key)
            return None if rec is None else _snapshot(rec)

    def keys(self, queue: str, state: State, *, now: float | None) -> list[str]:
        with self._lock:
            q = self._read(queue, now)
            if q is None:
                return []
            if state is _DEAD:
                return [r[_KEY] for r in q.dead.values()]
            if state is _LEASED:
                return [k for k, r in q.by_key.items() if r[_STATE] is _LEASED]
            out: list[str] = []
            for p in q.prios:
                level = q.levels[-p]
                out.extend(level.head)
                out.extend(level.line)
            delayed = [r for r in q.by_key.values() if r[_STATE] is _READY and r[_WHERE] is None]
            delayed.sort(key=lambda r: (r[_AVAILABLE_AT], -r[_PRIORITY]))
            out.extend(r[_KEY] for r in delayed)
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
                out.append(_snapshot(rec))
            return out

    def stats(self, queue: str, *, now: float | None) -> QueueStats:
        assert now is not None
        with self._lock:
            q = self._read(queue, now)
            if q is None:
                return QueueStats(0, 0, 0, 0, 0, None, None, {})
            oldest_ready: float | None = None
            oldest_leased: float | None = None
            leased_sum = 0.0
            by_owner: dict[str, int] = {}
            delayed = 0
            for rec in q.by_key.values():
                if rec[_STATE] is _LEASED:
                    age = now - rec[_LEASED_AT]
                    oldest_leased = age if oldest_leased is None else max(oldest_leased, age)
                    leased_sum += age
                    owner = rec[_LEASED_BY] or ""
                    by_owner[owner] = by_owner.get(owner, 0) + 1
                elif rec[_WHERE] is None:
                    delayed += 1
                else:
                    age = now - rec[_AVAILABLE_AT]
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
                mean_leased_age=leased_sum / q.leased if q.leased else None,
            )

    # -- maintenance ---------------------------------------------------------------
    def purge(self, queue: str) -> int:
        with self._lock:
            q = self._queues.get(queue)
            n = 0 if q is None else q.clear()
        if n and self.notifier.waiting:
            self.notifier.space(queue, n)
        return n

    def prune_dead(self, queue: str, *, before: float) -> int:
        with self._lock:
            q = self._queues.get(queue)
            if q is None:
                return 0
            doomed = [mid for mid, r in q.dead.items() if (r[_DEAD_AT] or 0.0) <= before]
            for mid in doomed:
                del q.dead[mid]
            return len(doomed)

    def next_due(self, queue: str, *, now: float | None, key: str | None = None) -> float | None:
        with self._lock:
            q = self._queues.get(queue)
            if q is None:
                return None
            if key is not None:
                rec = q.by_key.get(key)
                if rec is None or rec[_WHERE] is not None:
                    return None
                due: float | None = rec[
                    _LEASE_EXPIRES_AT if rec[_STATE] is _LEASED else _AVAILABLE_AT
                ]
                return due
            timers = q.timers
            while timers and timers[0][3][_GEN] != timers[0][2]:
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
