"""Waiting, layered on top of stores whose primitives never wait.

A store owns one ``Notifier``. Faces register *waiters* in channels:

* ``get``  channel per queue: a put wakes **one** get-waiter (the most recent:
  a warm thread/task), never all of them;
* ``take`` channel per (queue, key): only waiters of that key are woken;
* ``put``  channel per queue: an ack/dead-letter wakes one blocked producer;
* ``result`` channel per (queue, key): an outcome recorded for that key
  (``settled``) wakes its ``q.result(key)`` waiters.

Time: the oldest waiter of a get/put channel (its *head*) also sleeps no
longer than the store's next due moment (a delayed message falling due, a
lease expiring), and every take-waiter watches its own key's next due
moment. So an idle queue has no polling loop and no herd: one waiter per
channel wakes at a due time, and passes the duty on when it leaves. With a
clock that tells when it moves (``FakeClock``), waiters recheck on every move.

Nothing here decides queue semantics; a wake-up only means "try again".
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any

__all__ = ["AsyncWaiter", "Notifier", "ThreadWaiter", "Waiter"]

_INF = float("inf")


class Waiter:
    """One blocked call. ``signal()`` may come from any thread, any number of times."""

    __slots__ = ("channel", "hinted", "name", "popped", "signaled", "table", "wake_at")

    def __init__(self) -> None:
        self.signaled = False
        self.popped = False  # removed from its channel by a ready/space event
        # Woken by ``changed()`` (an unknown number of new messages): on success it
        # passes the wake-up on, so the chain runs until a waiter finds nothing.
        self.hinted = False
        self.wake_at = _INF  # clock time at which this waiter rechecks by itself
        self.channel: dict[Waiter, None] | None = None
        # Where it waits: its notifier table and its name there (the queue, or
        # (queue, key) for take and result waiters), made once per wait.
        self.table: dict[Any, Channel] = _NOWHERE
        self.name: Any = None

    def signal(self) -> None:  # called with the notifier lock held
        raise NotImplementedError


# The table of a waiter that never joined (shared, never written).
_NOWHERE: dict[Any, Channel] = {}


class ThreadWaiter(Waiter):
    """A waiter for a blocked thread: a binary semaphore made from a lock."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._lock.acquire()

    def signal(self) -> None:
        if not self.signaled:
            self.signaled = True
            # A signal that arrived after a timed-out wait and before ``rearm`` left
            # the lock released: a binary semaphore, so never release it twice.
            if self._lock.locked():
                self._lock.release()

    def wait(self, timeout: float | None) -> bool:
        """Block until signalled or ``timeout`` real seconds pass; True when signalled."""
        return self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))


class AsyncWaiter(Waiter):
    """A waiter for a blocked asyncio task; safe to signal from other threads."""

    __slots__ = ("_fut", "_loop", "_thread")

    def __init__(self) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._fut: asyncio.Future[None] | None = None

    def signal(self) -> None:
        if self.signaled:
            return
        self.signaled = True
        fut = self._fut
        if fut is None:
            return
        if threading.get_ident() == self._thread:
            if not fut.done():
                fut.set_result(None)
        else:
            self._loop.call_soon_threadsafe(_resolve, fut)

    def wait(self, timeout: float | None) -> Awaitable[object]:
        """An awaitable that completes when signalled or ``timeout`` real seconds pass.

        Not a coroutine: an untimed wait hands back the future itself, one object
        fewer made and freed per wait (with 1,000 tasks waiting, each of those is
        freed cold: a cache miss)."""
        if self.signaled:
            return _SIGNALED
        fut = self._loop.create_future()
        self._fut = fut  # (a later signal() finds it done, or resolves it: both fine)
        if self.signaled:  # signalled between the check and the future's creation
            return _SIGNALED
        if timeout is None:
            return fut
        return self._timed(fut, timeout)

    @staticmethod
    async def _timed(fut: asyncio.Future[None], timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), max(timeout, 0.0))


class _Signaled:
    """An awaitable that is already complete (the signal came before the wait)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


_SIGNALED = _Signaled()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


# A channel: its waiters in arrival order (a dict is ordered; it is cheaper to make
# and free than an OrderedDict, and channels come and go with their waiters).
Channel = dict[Waiter, None]


class Notifier:
    """In-process wake-ups for one store. Thread-safe; stores call it outside their locks.

    ``waiting`` counts registered waiters, so a store skips every call when it is 0.
    ``watch(active)`` (optional) is told when the first waiter arrives (True) and the
    last one leaves (False): cross-process stores run their change watcher only then.
    """

    def __init__(self, watch: Callable[[bool], None] | None = None) -> None:
        self._lock = threading.Lock()
        self.waiting = 0
        self._watch = watch
        self._get: dict[str, Channel] = {}
        self._put: dict[str, Channel] = {}
        # Keyed waiters: queue -> key -> channel (no (queue, key) tuple per wait).
        self._take: dict[str, dict[str, Channel]] = {}
        self._result: dict[str, dict[str, Channel]] = {}

    def _place(self, kind: str, queue: str, key: str | None) -> tuple[dict[str, Channel], str]:
        """Where a waiter of ``kind`` waits: its table, and its name there (the
        queue, or for take and result waiters the key, in the queue's own table)."""
        if kind == "take" or kind == "result":
            assert key is not None
            keyed = self._take if kind == "take" else self._result
            table = keyed.get(queue)
            if table is None:
                table = keyed[queue] = {}
            return table, key
        return (self._get if kind == "get" else self._put), queue

    @staticmethod
    def _keyed(keyed: dict[str, dict[str, Channel]], queue: str, key: str) -> Channel | None:
        table = keyed.get(queue)
        return None if table is None else table.get(key)

    # -- registration (faces) ------------------------------------------------------
    @staticmethod
    def _channel(table: dict[Any, Channel], name: Any) -> Channel:
        ch = table.get(name)
        if ch is None:
            ch = table[name] = {}
        return ch

    def join(self, kind: str, queue: str, key: str | None, waiter: Waiter) -> bool:
        """Add ``waiter`` to its channel (again, after it was popped); True if it is the head."""
        first = False
        with self._lock:
            waiter.table, waiter.name = table, name = self._place(kind, queue, key)
            ch = self._channel(table, name)
            if waiter.channel is None:
                self.waiting += 1
                first = self.waiting == 1
            waiter.channel = ch
            waiter.popped = False
            ch[waiter] = None
            head = next(iter(ch)) is waiter
        if first and self._watch is not None:
            self._watch(True)
        return head

    def rearm(self, waiter: Waiter, wake_at: float) -> bool:
        """Reset the signal before rechecking; return whether the waiter is still its
        channel's head (heads watch the due time). Re-joins a popped waiter."""
        with self._lock:
            waiter.signaled = False
            waiter.wake_at = wake_at
            if waiter.channel is None:
                return False
            if waiter.popped:
                # Its channel may have been dropped while it was out: look it up again.
                ch = waiter.channel = self._channel(waiter.table, waiter.name)
                waiter.popped = False
                ch[waiter] = None
            else:
                ch = waiter.channel
            return next(iter(ch)) is waiter

    def leave(self, waiter: Waiter, *, satisfied: bool) -> None:
        """Remove a waiter for good. A waiter popped by an event since its last
        recheck passes the event on, whether or not it was ``satisfied`` (it cannot
        tell whether its claim took that event's message); a head that leaves wakes
        the next head."""
        with self._lock:
            if waiter.channel is None:
                return
            table, name = waiter.table, waiter.name
            keyed = table is not self._get and table is not self._put
            ch = table.get(name)
            was_head = not waiter.popped and ch is not None and next(iter(ch)) is waiter
            if ch is not None and not waiter.popped:
                del ch[waiter]
            waiter.channel = None
            self.waiting -= 1
            last = self.waiting == 0
            if ch:
                # A waiter popped by an event after its last rearm may have claimed
                # before that event's message arrived: pass the event on even when
                # satisfied (at worst one spurious recheck; never a lost wake-up).
                if waiter.popped:
                    self._pop_one(ch)
                elif satisfied and waiter.hinted:
                    nxt = next(reversed(ch))
                    nxt.hinted = True
                    nxt.signal()
                elif was_head:
                    next(iter(ch)).signal()
            elif ch is not None and keyed:
                # One channel per key: drop it when empty (a queue's table of keys
                # stays: one per queue name).
                del table[name]
        if last and self._watch is not None:
            self._watch(False)

    # -- events (stores) -----------------------------------------------------------
    def ready(self, queue: str, key: str) -> None:
        """A message of ``key`` became claimable now: wake one get- and one take-waiter."""
        with self._lock:
            ch = self._get.get(queue)
            if ch:
                self._pop_one(ch)
            ch = self._keyed(self._take, queue, key)
            if ch:
                self._pop_one(ch)

    def ready_many(self, queue: str, keys: list[str]) -> None:
        """Several messages became claimable now."""
        with self._lock:
            ch = self._get.get(queue)
            for key in keys:
                if ch:
                    self._pop_one(ch)
                tch = self._keyed(self._take, queue, key)
                if tch:
                    self._pop_one(tch)

    def scheduled(self, queue: str, due: float, key: str) -> None:
        """Something of ``key`` becomes claimable at clock time ``due``: heads and
        take-waiters that planned to sleep past it recheck now."""
        with self._lock:
            for ch in (self._get.get(queue), self._put.get(queue)):
                if ch:
                    head = next(iter(ch))
                    if head.wake_at > due:
                        head.signal()
            tch = self._keyed(self._take, queue, key)
            if tch:
                for w in tch:
                    if w.wake_at > due:
                        w.signal()

    def settled(self, queue: str, key: str) -> None:
        """An outcome was recorded for ``key``: wake its ``result`` waiters."""
        with self._lock:
            ch = self._keyed(self._result, queue, key)
            if ch:
                for w in ch:
                    w.signal()

    def space(self, queue: str, n: int = 1) -> None:
        """The live count went down: wake up to ``n`` blocked producers."""
        if not self._put.get(queue):
            # No producer blocked (the common case: an ack while consumers wait).
            # Read without the lock: a producer that joins after this read rechecks
            # the count itself after joining, so no wake-up is lost.
            return
        with self._lock:
            ch = self._put.get(queue)
            for _ in range(n):
                if not ch:
                    break
                self._pop_one(ch)

    def changed(self, queue: str | None = None) -> None:
        """Something changed that the store cannot describe (another process wrote):
        wake one get- and one put-waiter per queue and every take-waiter to recheck."""
        with self._lock:
            for table in (self._get, self._put):
                for name, ch in table.items():
                    if ch and (queue is None or name == queue):
                        w = next(reversed(ch))
                        w.hinted = True
                        w.signal()
            for keyed in (self._take, self._result):
                for name, table in keyed.items():
                    if queue is None or name == queue:
                        for tch in table.values():
                            for w in tch:
                                w.signal()

    def wake_all(self, queue: str) -> None:
        """Wake every waiter of ``queue`` (a queue object closed: its waiters must see it)."""
        with self._lock:
            for table in (self._get, self._put):
                ch = table.get(queue)
                if ch:
                    for w in ch:
                        w.signal()
            for keyed in (self._take, self._result):
                for tch in keyed.get(queue, {}).values():
                    for w in tch:
                        w.signal()

    def clock_moved(self, now: float) -> None:
        """A test clock moved to ``now``: waiters whose due moment passed recheck."""
        with self._lock:
            channels = [*self._get.values(), *self._put.values()]
            for keyed in (self._take, self._result):
                for table in keyed.values():
                    channels += table.values()
            for ch in channels:
                for w in ch:
                    if w.wake_at <= now:
                        w.signal()

    @staticmethod
    def _pop_one(ch: Channel) -> None:
        # The most recent waiter: the warmest thread/task, and the head keeps its duty.
        waiter, _ = ch.popitem()  # (a dict pops its newest item)
        waiter.popped = True
        waiter.signal()
