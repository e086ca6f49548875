"""``Queue``: the sync, thread-safe face. GENERATED from ``leaseq/_async/queue.py``
by ``scripts/unasync.py`` — do not edit; edit the async source and run
``make generate``."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from leaseq import _face
from leaseq._core import rules
from leaseq._core.model import Lease, Message, Outcome, QueueStats, State
from leaseq._waiting import ThreadWaiter
from leaseq.errors import (
    Closed,
    ConfigurationError,
    DeadLettered,
    Empty,
    Full,
    LeaseLost,
    MessageNotFound,
)
from leaseq.stores.base import PutRequest, Store

__all__ = ["LeaseContext", "Queue"]

T = TypeVar("T")
_INF = float("inf")
_monotonic = time.monotonic
_MIN_SLEEP = 0.001  # a due moment already passed: recheck soon, never spin
_new = tuple.__new__
_U = "update"
_UNSET: Any = _face.UNSET
_FAST = ("put", "get", "ack")  # the methods memory://'s fast path stands in for
_RESULT_POLL = 0.25  # result waiters also recheck this often: a lost wake-up costs latency only


class Queue:
    """A keyed, leased queue (sync face, thread-safe). See DESIGN §4 for every guarantee.

    ``store`` is a URL (``memory://``, ``sqlite:///jobs.db``, ...) or a store
    object. Blocking calls take ``timeout=`` as a total deadline in real
    seconds and raise ``leaseq.Empty`` when it passes; message times (delays,
    leases) follow ``clock``.
    """

    def __init__(
        self,
        store: str | Store = "memory://",
        *,
        name: str = "default",
        lease_timeout: float = 30.0,
        max_attempts: int | None = None,
        maxsize: int = 0,
        overflow: str = "block",
        serializer: Any = None,
        clock: Callable[[], float] | None = None,
        subscribers: Sequence[str] | None = None,
        result_ttl: float | None = _face.DEFAULT_RESULT_TTL,
    ) -> None:
        self._settings = s = _face.settings(
            name=name,
            lease_timeout=lease_timeout,
            max_attempts=max_attempts,
            maxsize=maxsize,
            overflow=overflow,
            clock=clock,
        )
        self._subscribers = _face.check_subscribers(s.name, subscribers)
        self._result_ttl = _face.check_result_ttl(result_ttl)
        self._store, self._owns_store = _face.open_for_queue(store, serializer)
        self._inline = bool(self._store.inline)
        self._aio: Any = self._async_store(self._store)
        self._notifier = self._store.notifier
        self._name = s.name
        self._clock = s.clock
        # Server-clock stores decide time themselves unless a clock was passed.
        self._explicit_clock = clock is not None or not self._store.server_clock
        self._lease_timeout = s.lease_timeout
        self._max_attempts = s.max_attempts
        self._maxsize = s.maxsize
        self._closed = False
        if s.fake_clock:
            s.clock.subscribe(self._clock_moved)  # type: ignore[attr-defined]
        self._install_fast_path()

    def _install_fast_path(self) -> None:
        """On ``memory://``, ``put``/``get``/``ack`` become the store's fused fast path.

        A pure-Python call costs mostly its layers (this method, the store's, its
        helpers), so the store builds the three as closures over its structures
        (``leaseq.stores._memory_fast``) and they shadow the methods as instance
        attributes. Any option or uncommon case runs the method itself, so every
        decision keeps one implementation. A subclass that overrides one of the
        three methods keeps its own; ``close()`` removes them.
        """
        make = getattr(self._store, "face_ops", None)
        cls = type(self)
        if make is None or (cls.put, cls.get, cls.ack) != (
            Queue.put,
            Queue.get,
            Queue.ack,
        ):
            return
        methods = [getattr(cls, name).__get__(self) for name in _FAST]
        put, get, ack = make(self, *methods)
        for name, fast, method in zip(_FAST, (put, get, ack), methods, strict=True):
            # Name, doc, and __wrapped__ for inspect.signature: they read as the method.
            functools.update_wrapper(fast, method)
            # setattr, not self.__dict__: a materialized __dict__ would cost every
            # later attribute read of this queue its specialization.
            setattr(self, name, fast)

    @staticmethod
    def _async_store(store: Store) -> Any:
        return _face.SyncStore(store)

    # -- properties ----------------------------------------------------------------
    @property
    def name(self) -> str:
        """The queue's name within its store."""
        return self._name

    @property
    def store(self) -> Store:
        """The store object this queue uses."""
        return self._store

    @property
    def subscribers(self) -> tuple[str, ...]:
        """The subscriber names ``publish`` copies into (``<name>.<subscriber>`` queues)."""
        return self._subscribers

    @property
    def clock(self) -> Callable[[], float]:
        """The clock message times follow (epoch seconds)."""
        return self._clock

    @property
    def lease_timeout(self) -> float:
        """Seconds a lease lasts unless a call says otherwise."""
        return self._lease_timeout

    @property
    def max_attempts(self) -> int | None:
        """Attempts a message put by this queue gets before it dies (None: unbounded)."""
        return self._max_attempts

    @property
    def maxsize(self) -> int:
        """The live-message bound (0: unbounded)."""
        return self._maxsize

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran."""
        return self._closed

    def _now(self) -> float | None:
        if self._closed:
            raise self._closed_error()
        return self._clock() if self._explicit_clock else None

    def _closed_error(self) -> Closed:
        return Closed(f"queue {self._name!r} is closed; open a new queue to go on")

    def _clock_moved(self) -> None:
        self._notifier.clock_moved(self._clock())

    # -- put -----------------------------------------------------------------------
    def put(
        self,
        value: Any,
        *,
        key: str | None = None,
        priority: int = 0,
        delay: float = 0.0,
        at: float | None = None,
        if_ready: str = "update",
        if_in_flight: str = "update",
        block: bool = True,
        timeout: float | None = None,
        connection: Any = None,
    ) -> Message:
        """Store one message and return it; atomic. With a key, at most one live
        message per key: ``if_ready``/``if_in_flight`` say what a second put does.

        ``connection``: enqueue inside that open database transaction (PostgreSQL:
        a psycopg connection of the store's database), so the message exists iff the
        caller's transaction commits; it never blocks on ``maxsize`` (``Full``).

        Raises ``KeyExists``/``KeyInFlight`` (policy ``reject``), ``Full`` when
        ``maxsize`` is reached and ``overflow="reject"`` or ``block=False`` or the
        ``timeout`` passes, ``ValueError``/``TypeError`` for bad arguments.
        """
        if (
            (key is None or type(key) is str)
            and type(priority) is int
            and -1000 <= priority <= 1000
            and not delay
            and at is None
            and if_ready == "update"
            and if_in_flight == "update"
        ):  # the common case skips the full validation
            req = _new(PutRequest, (value, key, priority, 0.0, None, _U, _U, self._max_attempts))
        else:
            req = _face.put_request(
                value, key, priority, delay, at, if_ready, if_in_flight, self._max_attempts
            )
        if timeout is not None:
            _face.check_timeout(timeout)
        if self._closed:
            raise self._closed_error()
        if connection is not None:
            return self._put_in(connection, req)
        now = self._clock() if self._explicit_clock else None
        try:
            if self._inline:
                return self._store.put(self._name, req, now=now, maxsize=self._maxsize)
            msg: Message = self._aio.put(self._name, req, now=now, maxsize=self._maxsize)
            return msg
        except Full:
            if not block or self._settings.overflow == "reject":
                raise
        return self._wait_put(req, timeout)

    def _put_in(self, connection: Any, req: PutRequest) -> Message:
        put_in = getattr(self._aio, "put_in", None)
        if put_in is None:
            raise ConfigurationError(
                f"put(connection=...) needs a store that joins your transaction "
                f"(postgresql://), not {self._store.url}"
            )
        msg: Message = put_in(connection, self._name, req, now=self._now(), maxsize=self._maxsize)
        return msg

    def _wait_put(self, req: PutRequest, timeout: float | None) -> Message:
        def attempt() -> Message | None:
            try:
                msg: Message = self._aio.put(
                    self._name, req, now=self._now(), maxsize=self._maxsize
                )
                return msg
            except Full:
                return None

        try:
            return self._wait("put", None, attempt, _face.check_timeout(timeout))
        except Empty:
            raise Full(
                f"queue {self._name!r} stayed full ({self._maxsize} live messages) "
                f"for {timeout}s; ack or purge messages, or raise maxsize"
            ) from None

    def put_many(self, values: Any) -> list[Message]:
        """Store several messages in one atomic step: all or none.

        Each element is a value or a ``(value, options)`` pair with put's
        keyword options. Raises ``Full`` (never blocks) when they do not fit.
        """
        reqs = [_face.put_item(item, self._max_attempts) for item in values]
        if not reqs:
            return []
        out: list[Message] = self._aio.put_many(
            self._name, reqs, now=self._now(), maxsize=self._maxsize
        )
        return out

    # -- claims --------------------------------------------------------------------
    def get(
        self,
        *,
        block: bool = True,
        timeout: float | None = None,
        lease_timeout: float | None = None,
        owner: str | None = None,
    ) -> Lease:
        """Lease the next message in delivery order; wait up to ``timeout`` (total)
        when none is claimable. Raises ``Empty``."""
        if lease_timeout is None:
            lt = self._lease_timeout
        else:
            lt = _face.check_lease_timeout(lease_timeout, self._lease_timeout)
        if timeout is not None:
            _face.check_timeout(timeout)
        if self._closed:
            raise self._closed_error()
        now = self._clock() if self._explicit_clock else None
        if self._inline:
            got = self._store.claim(self._name, now=now, lease_timeout=lt, owner=owner)
        else:
            got = self._aio.claim(self._name, now=now, lease_timeout=lt, owner=owner)
        if got:
            lease: Lease = got[0]
            return lease
        if not block:
            raise Empty(f"queue {self._name!r}: nothing to claim")
        leases = self._wait_claim(1, lt, owner, timeout)
        return leases[0]

    def get_many(
        self,
        n: int,
        *,
        block: bool = True,
        timeout: float | None = None,
        lease_timeout: float | None = None,
        owner: str | None = None,
    ) -> list[Lease]:
        """Lease up to ``n`` messages in one step; when blocking, wait for at least one.
        Non-blocking with nothing claimable returns ``[]``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        lt = _face.check_lease_timeout(lease_timeout, self._lease_timeout)
        timeout = _face.check_timeout(timeout)
        got: list[Lease] = self._aio.claim(
            self._name, now=self._now(), lease_timeout=lt, owner=owner, limit=n
        )
        if got or not block:
            return got
        return self._wait_claim(n, lt, owner, timeout)

    def _wait_claim(
        self, n: int, lt: float, owner: str | None, timeout: float | None
    ) -> list[Lease]:
        def attempt() -> list[Lease] | None:
            got: list[Lease] = self._aio.claim(
                self._name, now=self._now(), lease_timeout=lt, owner=owner, limit=n
            )
            return got or None

        try:
            return self._wait("get", None, attempt, _face.check_timeout(timeout))
        except Empty:
            raise Empty(f"queue {self._name!r}: nothing to claim within {timeout}s") from None

    def take(
        self,
        key: str,
        *,
        block: bool = True,
        timeout: float | None = None,
        lease_timeout: float | None = None,
        owner: str | None = None,
    ) -> Lease:
        """Lease the message of one key; wait (up to ``timeout``, total) while the key
        is absent, delayed or leased. Raises ``Empty``."""
        if type(key) is not str:
            raise TypeError(f"key must be a str, not {type(key).__name__}")
        lt = _face.check_lease_timeout(lease_timeout, self._lease_timeout)
        timeout = _face.check_timeout(timeout)
        got = self._take_once(key, lt, owner)
        if got is not None:
            return got
        if not block:
            raise Empty(f"queue {self._name!r}: key {key!r} is not claimable")
        try:
            # A method and its arguments, not a closure: everything a waiting call
            # makes lives until it is woken, and with many waiters it is freed cold.
            take = Queue._take_once  # (not self._take_once: no bound method either)
            return self._wait("take", key, take, timeout, (self, key, lt, owner))
        except Empty:
            raise Empty(
                f"queue {self._name!r}: key {key!r} was not claimable within {timeout}s"
            ) from None

    def _take_once(self, key: str, lt: float, owner: str | None) -> Lease | None:
        lease: Lease | None = self._aio.claim_key(
            self._name, key, now=self._now(), lease_timeout=lt, owner=owner
        )
        return lease

    # -- waiting -------------------------------------------------------------------
    def _wait(
        self,
        kind: str,
        key: str | None,
        attempt: Callable[..., T | None],
        timeout: float | None,
        args: tuple[Any, ...] = (),
    ) -> T:
        """Retry ``attempt(*args)`` until it returns non-None or the total deadline passes.

        The waiter joins its channel *before* each recheck, so no wake-up is lost;
        heads (and take-waiters) also sleep no longer than the next due moment.
        """
        deadline = None if timeout is None else _monotonic() + timeout
        notifier = self._notifier
        waiter = ThreadWaiter()
        head = notifier.join(kind, self._name, key, waiter)
        satisfied = False
        try:
            while True:
                # The attempt's moment: the next due moment is asked as of then, so a
                # message that fell due since (and is no longer "due later") still
                # makes us recheck at once instead of sleeping to the deadline.
                tried_at = self._now()
                result = attempt(*args)
                if result is not None:
                    satisfied = True
                    return result
                remaining = None if deadline is None else deadline - _monotonic()
                if remaining is not None and remaining <= 0:
                    raise Empty(f"queue {self._name!r}: deadline passed")
                sleep = self._plan_sleep(waiter, kind, key, head, remaining, tried_at)
                waiter.wait(sleep)
                head = notifier.rearm(waiter, _INF)
        finally:
            notifier.leave(waiter, satisfied=satisfied)

    def _plan_sleep(
        self,
        waiter: ThreadWaiter,
        kind: str,
        key: str | None,
        head: bool,
        remaining: float | None,
        tried_at: float | None,
    ) -> float | None:
        """How long to sleep: until the deadline, or the next due moment if we watch it."""
        if kind == "result":
            return _RESULT_POLL if remaining is None else min(_RESULT_POLL, remaining)
        if not (head or kind == "take"):
            return remaining
        due: float | None = self._aio.next_due(
            self._name, now=tried_at, key=key if kind == "take" else None
        )
        if due is None:
            return remaining
        waiter.wake_at = due
        if self._settings.fake_clock:
            # The clock tells us when it moves; if it moved past ``due`` before we
            # published wake_at, clock_moved() skipped us: recheck at once.
            return 0.0 if due <= self._clock() else remaining
        now = self._clock()
        until_due = max(due - now, _MIN_SLEEP)
        return until_due if remaining is None else min(until_due, remaining)

    # -- lease operations ----------------------------------------------------------
    def ack(self, lease: Lease, *, result: Any = _UNSET) -> None:
        """Finish the leased message: it is deleted (a buffered follow-up becomes READY).
        Raises ``LeaseLost`` when the token no longer holds it.

        With ``result=``, the key's outcome (succeeded, with that value) goes to the
        results ledger in the same atomic step, so ``result(key)`` returns it and an
        idempotent worker never runs the key again while the ledger keeps it.
        """
        if type(lease) is not Lease:
            _check_lease(lease)
        if self._closed:
            raise self._closed_error()
        now = self._clock() if self._explicit_clock else None
        if result is not _UNSET:
            outcome = self._outcome(lease.key, "succeeded", result, None)
            self._aio.ack(self._name, lease, now=now, outcome=outcome)
        elif self._inline:
            self._store.ack(self._name, lease, now=now)
        else:
            self._aio.ack(self._name, lease, now=now)

    def release(
        self,
        lease: Lease,
        *,
        delay: float = 0.0,
        front: bool = False,
        error: BaseException | str | None = None,
    ) -> Message:
        """Hand the message back: at the head (``front``) or the back of its priority,
        after ``delay``; DEAD (``max_attempts``) if it used its last attempt.
        Raises ``LeaseLost``."""
        _check_lease(lease)
        delay = rules.check_seconds("delay", delay) if delay else 0.0
        msg: Message = self._aio.release(
            self._name,
            lease,
            now=self._now(),
            delay=delay,
            front=bool(front),
            error=_error_text(error),
        )
        return msg

    def extend(self, lease: Lease, seconds: float | None = None) -> Lease:
        """Keep holding: the lease now expires ``seconds`` (default: the queue's
        lease_timeout) from now. Returns the new Lease (same token). Raises ``LeaseLost``."""
        _check_lease(lease)
        secs = _face.check_lease_timeout(seconds, self._lease_timeout)
        new: Lease = self._aio.renew(self._name, lease, now=self._now(), seconds=secs)
        return new

    def dead_letter(
        self,
        lease: Lease,
        *,
        error: BaseException | str | None = None,
        record: bool = False,
    ) -> Message:
        """Move the leased message to the dead letters with ``error`` as its reason.
        With ``record=True`` the key's outcome (failed, with the error) goes to the
        results ledger in the same atomic step. Raises ``LeaseLost``."""
        _check_lease(lease)
        text = _error_text(error)
        outcome = self._outcome(lease.key, "failed", None, text) if record else None
        msg: Message = self._aio.dead_letter(
            self._name, lease, now=self._now(), error=text, outcome=outcome
        )
        return msg

    def _outcome(self, key: str, status: str, value: Any, error: str | None) -> Outcome:
        at = self._clock()
        ttl = self._result_ttl
        return Outcome(key, status, value, error, at, None if ttl is None else at + ttl)

    # -- results ledger and pub/sub ------------------------------------------------
    def outcome(self, key: str) -> Outcome | None:
        """The key's recorded outcome (see ``ack(result=)``), or None. Reads only."""
        if type(key) is not str:
            raise TypeError(f"key must be a str, not {type(key).__name__}")
        got: Outcome | None = self._aio.get_outcome(self._name, key, now=self._now())
        return got

    def result(self, key: str, *, block: bool = True, timeout: float | None = None) -> Any:
        """The value the key's work succeeded with; waits (up to ``timeout``, total)
        until an outcome is recorded. Raises ``DeadLettered`` when the work died
        with ``record=True``, ``Empty`` when no outcome came in time. Durable
        stores keep values through their serializer (JSON: tuples come back as lists).
        """
        got = self.outcome(key)
        if got is None:
            if not block:
                raise Empty(f"queue {self._name!r}: no result for key {key!r} yet")

            def attempt() -> Outcome | None:
                return self.outcome(key)

            try:
                got = self._wait("result", key, attempt, _face.check_timeout(timeout))
            except Empty:
                raise Empty(
                    f"queue {self._name!r}: no result for key {key!r} within {timeout}s"
                ) from None
        if got.status != "succeeded":
            raise DeadLettered(self._name, key, got.error)
        return got.value

    def prune_results(self) -> int:
        """Remove outcomes past their ``result_ttl``; return how many."""
        n: int = self._aio.prune_outcomes(self._name, before=self._clock())
        return n

    def publish(
        self,
        value: Any,
        *,
        key: str | None = None,
        priority: int = 0,
        delay: float = 0.0,
        at: float | None = None,
        if_ready: str = "update",
        if_in_flight: str = "update",
    ) -> list[Message]:
        """Put one copy of ``value`` into each subscriber's queue (``<name>.<subscriber>``),
        all or none: if any copy is refused (``KeyExists``, ``KeyInFlight``,
        ``Full`` at ``maxsize``), no copy is written and that error is raised.
        Returns the copies in subscriber order."""
        if not self._subscribers:
            raise ConfigurationError(
                f"queue {self._name!r} has no subscribers: open it with "
                "subscribers=['billing', ...] to publish"
            )
        req = _face.put_request(
            value, key, priority, delay, at, if_ready, if_in_flight, self._max_attempts
        )
        items = [(f"{self._name}.{sub}", req) for sub in self._subscribers]
        out: list[Message] = self._aio.publish(items, now=self._now(), maxsize=self._maxsize)
        return out

    def worker(self, handler: Any = None, **options: Any) -> Any:
        """``leaseq.Worker(self, handler, **options)``; without a handler, a decorator:
        ``@q.worker(concurrency=4)`` turns a function into that worker."""
        from leaseq.worker import Worker

        if handler is None:
            return lambda fn: Worker(self, fn, **options)
        return Worker(self, handler, **options)

    def lease(
        self, *, timeout: float | None = None, lease_timeout: float | None = None
    ) -> LeaseContext:
        """``with q.lease() as job``: get a lease; ack it when the block
        succeeds, release it (recording the error) when the block raises."""
        return LeaseContext(self, timeout, lease_timeout)

    # -- reads (never change anything, take no lease) ------------------------------
    def peek(self, key: str) -> Message | None:
        """The key's live message (READY or LEASED), or None."""
        msg: Message | None = self._aio.peek_key(self._name, key, now=self._now())
        return msg

    def contains(self, key: str) -> bool:
        """Whether the key has a live message."""
        return self.peek(key) is not None

    def __contains__(self, key: object) -> bool:
        """``key in q``: whether the key has a live message."""
        return isinstance(key, str) and self.contains(key)

    def inspect(self, message_id: str) -> Message:
        """One message by id (live or dead). Raises ``MessageNotFound``."""
        msg: Message | None = self._aio.get_message(self._name, message_id, now=self._now())
        if msg is None:
            raise MessageNotFound(self._name, message_id)
        return msg

    def keys(self, state: State | str = State.READY) -> list[str]:
        """Keys of the messages in ``state`` (READY includes delayed ones)."""
        st = State(state)
        out: list[str] = self._aio.keys(self._name, st, now=self._now())
        return out

    def qsize(self) -> int:
        """How many messages are claimable now (ready and due)."""
        n: int = self._aio.count_ready(self._name, now=self._now())
        return n

    def empty(self) -> bool:
        """True when no message is claimable now."""
        return self.qsize() == 0

    def full(self) -> bool:
        """True when ``maxsize`` live messages are held (never with maxsize=0)."""
        if not self._maxsize:
            return False
        n: int = self._aio.count_live(self._name, now=self._now())
        return n >= self._maxsize

    def stats(self) -> QueueStats:
        """Counts and ages now (see ``QueueStats``)."""
        st: QueueStats = self._aio.stats(self._name, now=self._now())
        return st

    # -- dead letters and maintenance ------------------------------------------------
    def dead_letters(self, *, limit: int | None = None) -> list[Message]:
        """Dead letters, oldest death first."""
        out: list[Message] = self._aio.dead_letters(self._name, now=self._now(), limit=limit)
        return out

    def requeue_dead(
        self, message: Message | str, *, delay: float = 0.0, reset_attempts: bool = True
    ) -> Message:
        """Put a dead letter back in line (attempts reset unless asked otherwise).
        Raises ``MessageNotFound`` when it is not a dead letter."""
        mid = message.id if isinstance(message, Message) else message
        delay = rules.check_seconds("delay", delay) if delay else 0.0
        msg: Message = self._aio.requeue_dead(
            self._name, mid, now=self._now(), delay=delay, reset_attempts=reset_attempts
        )
        return msg

    def prune_dead(self, *, older_than: float) -> int:
        """Delete dead letters that died ``older_than`` seconds ago or more; return how many."""
        secs = rules.check_seconds("older_than", older_than)
        now = self._now()
        before = (self._clock() if now is None else now) - secs
        n: int = self._aio.prune_dead(self._name, before=before)
        return n

    def purge(self) -> int:
        """Delete every message of this queue (live and dead); return how many.
        Holders of leases get ``LeaseLost`` when they ack."""
        self._now()
        n: int = self._aio.purge(self._name)
        return n

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        """Stop using the queue; later calls raise ``Closed``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for name in _FAST:  # the fast path's closures refer to self
            with contextlib.suppress(AttributeError):
                delattr(self, name)
        # Blocked calls of this queue recheck, see it closed, and raise Closed.
        self._notifier.wake_all(self._name)
        if self._settings.fake_clock:
            self._clock.unsubscribe(self._clock_moved)  # type: ignore[attr-defined]
        self._aio.shutdown()
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._store.url!r}, name={self._name!r})"


class LeaseContext:
    """The context manager ``Queue.lease()`` returns."""

    def __init__(self, queue: Queue, timeout: float | None, lease_timeout: float | None) -> None:
        self._queue = queue
        self._timeout = timeout
        self._lease_timeout = lease_timeout
        self.lease: Lease | None = None

    def __enter__(self) -> Lease:
        self.lease = self._queue.get(timeout=self._timeout, lease_timeout=self._lease_timeout)
        return self.lease

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lease = self.lease
        assert lease is not None
        if exc is None:
            self._queue.ack(lease)
            return
        # If the lease is already lost, the body's own exception is what matters.
        with contextlib.suppress(LeaseLost):
            self._queue.release(lease, error=exc)


def _check_lease(lease: object) -> None:
    if not isinstance(lease, Lease):
        raise TypeError(f"expected a Lease from get()/take(), not {type(lease).__name__}")


def _error_text(error: BaseException | str | None) -> str | None:
    if error is None or isinstance(error, str):
        return error
    return f"{type(error).__name__}: {error}"
