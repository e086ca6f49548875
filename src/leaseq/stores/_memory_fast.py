"""The faces' fast path on ``memory://``: plain put, get and ack, fused.

A plain ``q.put(v)``, ``q.get()`` or ``q.ack(lease)`` on ``memory://`` is pure
Python from end to end, and the cost of a call is mostly its layers: the
face's method (with nine keyword-only defaults to fill in), then the store's
method, then its helpers. The closures built here do the plain case in one
frame over the store's own structures, under the store's lock. They are what
``Queue``/``AsyncQueue`` install as their ``put``/``get``/``ack`` on this store.

They take the fast path only when nothing can differ from the general one:
no option but ``key``/``priority`` (put) or ``timeout``/``lease_timeout``/
``owner``/``block`` (get, checked as the method checks them), no timer due,
a new key, room under ``maxsize``, something claimable now (get), a lease
still held with no buffered follow-up and no option (ack). Every other
case goes to ``slow``, the face's method itself, so every decision still has
one implementation. What is copied here is the common case's bookkeeping,
kept in step with ``MemoryStore._insert``/``_pop_ready``/``_lease``/``ack``;
``tests/stores/memory/test_fast_path.py`` runs the same random operations
through both paths and compares every result and snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

from leaseq._core.model import Lease, Message
from leaseq._face import check_lease_timeout, check_timeout
from leaseq.stores import memory as m

__all__ = ["face_ops"]

_new = tuple.__new__
_READY, _LEASED = m._READY, m._LEASED
_event = m._event
# The record slots used below, as literals (a constant load is cheaper than a global).
assert (m._STATE, m._ATTEMPTS, m._LEASE_EXPIRES_AT, m._LEASED_BY) == (4, 5, 8, 9)
assert (m._LEASED_AT, m._TOKEN) == (13, 14)
assert (m._ID, m._HISTORY, m._FOLLOW, m._GEN, m._WHERE) == (0, 11, 15, 17, 18)


def face_ops(
    store: m.MemoryStore,
    face: Any,
    slow_put: Callable[..., Any],
    slow_get: Callable[..., Any],
    slow_ack: Callable[..., Any],
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """``put(value, **kw)``, ``get(**kw)``, ``ack(lease, **kw)`` for ``face``.

    ``face`` is the queue (its ``_closed`` is read on every call; its name,
    clock, lease timeout, max_attempts and maxsize are fixed at creation);
    ``slow_*`` are its methods, bound. Each closure returns the method's result
    when it cannot take the fast path, so the async face gets a coroutine to
    await there.
    """
    name: str = face._name
    clock: Callable[[], float] = face._clock
    lease_timeout: float = face._lease_timeout
    max_attempts: int | None = face._max_attempts
    maxsize: int = face._maxsize
    acquire, release, notifier = store._acquire, store._release, store.notifier
    idp = store._idp
    q = store._q(name)  # a store keeps its _Queue objects for its whole life
    by_key, levels, prios = q.by_key, q.levels, q.prios

    def put(value: Any, **kw: Any) -> Any:
        key: str | None = None
        p = 0
        if kw:
            key, p = kw.get("key"), kw.get("priority", 0)
            if (
                len(kw) != ("key" in kw) + ("priority" in kw)
                or not (key is None or type(key) is str)
                or type(p) is not int
                or not -1000 <= p <= 1000
            ):
                return slow_put(value, **kw)
        if face._closed:
            return slow_put(value, **kw)
        now = clock()
        acquire()
        try:
            timers = q.timers
            if (
                (timers and timers[0][0] <= now)
                or (key is not None and key in by_key)
                or (maxsize and len(by_key) >= maxsize)
            ):
                msg = None  # a timer to apply, a key policy, or no room: the general path
            else:
                store._ids = n = store._ids + 1
                if key is None:  # as MemoryStore._new_id
                    key = mid = f"{idp}{n}"
                else:
                    mid = f"{idp}{n}:{key}"
                ready_key = key
                line = (levels.get(p) or store._new_level(q, p)).line
                # The record as m._new_rec builds it, written out: a call costs a frame.
                rec = [
                    mid, key, value, p, _READY, 0, now, now, None, None, None,
                    (), max_attempts, 0.0, None, None, False, 0, line, None,
                ]  # fmt: skip
                by_key[key] = rec
                line[key] = rec
                q.ready += 1
                msg = _new(
                    Message,
                    (mid, key, value, p, _READY, 0, now, now, None, None, None, (), max_attempts),
                )
        finally:
            release()
        if msg is None:
            return slow_put(value, **kw)
        if notifier.waiting:
            notifier.ready(name, ready_key)
        return msg

    def get(**kw: Any) -> Any:
        lt, owner = lease_timeout, None
        if kw:  # options a claim that finds a message needs (a Worker passes all four)
            if len(kw) != ("timeout" in kw) + ("lease_timeout" in kw) + ("owner" in kw) + (
                "block" in kw
            ):
                return slow_get(**kw)
            # Checked as the method checks them, and in its order.
            lt = check_lease_timeout(kw.get("lease_timeout"), lease_timeout)
            check_timeout(kw.get("timeout"))
            owner = kw.get("owner")
        if face._closed:
            return slow_get(**kw)
        now = clock()
        lease = None
        acquire()
        try:
            timers = q.timers
            while prios and not (timers and timers[0][0] <= now):
                p = -prios[0]
                level = levels[p]
                od = level.head or level.line
                if not od:  # an emptied level, dropped lazily (as _pop_ready does)
                    del prios[0]
                    del levels[p]
                    continue
                rec = od.popitem(False)[1]  # positional: no keyword parsing
                q.ready -= 1
                # One unpacking instead of nine indexed reads.
                (mid, key, value, _, _, attempts, created, avail, _, _, error, history,
                 max_att, _, _, _, _, gen, _, _) = rec  # fmt: skip
                attempts += 1
                exp = now + lt
                token = (store._tokens or store._refill_tokens()).pop()
                gen += 1
                rec[4] = _LEASED
                rec[5] = attempts
                rec[8] = exp
                rec[9] = owner
                rec[13] = now
                rec[14] = token
                rec[17] = gen
                rec[18] = None
                if attempts > 1:  # as m._lease: redeliveries are news
                    _event(rec, now, "claimed", owner)
                    history = rec[11]
                q.leased += 1
                q.seq = seq = q.seq + 1
                heappush(timers, (exp, seq, gen, rec))
                if len(timers) > 64:
                    store._compact(q)
                msg = _new(
                    Message,
                    (mid, key, value, p, _LEASED, attempts, created, avail, exp, owner,
                     error, history, max_att),
                )  # fmt: skip
                lease = _new(Lease, (key, value, token, attempts, exp, msg))
                break
        finally:
            release()
        if lease is None:
            return slow_get(**kw)  # (nothing claimable now: the method waits)
        if notifier.waiting:
            notifier.scheduled(name, exp, key)
        return lease

    def ack(lease: Lease, **kw: Any) -> Any:
        if kw or type(lease) is not Lease or face._closed:
            return slow_ack(lease, **kw)
        key, _, token, _, _, _ = lease
        now = clock()
        acquire()
        try:
            timers = q.timers
            rec = by_key.get(key)
            if (
                rec is not None
                and rec[14] == token
                and rec[4] is _LEASED
                and rec[15] is None  # a buffered follow-up: the general path
                # No timer due: a LEASED record's expiry timer is in the heap, so
                # the lease has not expired, and no other timer needs applying.
                and timers[0][0] > now
            ):
                last = timers[-1]
                if last[3] is rec and last[2] == rec[17]:
                    # Its live expiry timer is the heap's last entry (one task
                    # cycling): dropping the last entry keeps the heap valid. Any
                    # other entry of the record is stale already, and nothing will
                    # change the record again, so it needs no invalidation.
                    timers.pop()
                else:
                    rec[17] += 1  # its timer entry is stale now
                    rec[14] = None
                q.leased -= 1
                del by_key[key]
            else:
                rec = None  # stale, expired, or not the plain case: the general path
        finally:
            release()
        if rec is None:
            return slow_ack(lease)
        if notifier.waiting:
            notifier.space(name)
        return None

    return put, get, ack
