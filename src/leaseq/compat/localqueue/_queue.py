"""``PersistentQueue``: localqueue's queue over ``leaseq.Queue`` (``sqlite://`` by default).

Fixed, not copied:

* ``ack``/``release``/``dead_letter`` take the message ``get_message()`` returned and
  act through its lease token: a consumer whose lease expired (and whose message
  went to someone else) gets ``leaseq.LeaseLost`` instead of acking another's work;
* ``task_done()`` acks the oldest unfinished ``get()`` of the *calling thread*, never
  a message another thread is still working on;
* priorities (with ``PriorityOrdering``) follow leaseq's order, which does not
  depend on float-timestamp ties as the clock moves;
* ``maxsize`` counts live messages (ready, delayed and in flight) across processes.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import leaseq
from leaseq._core.model import Lease, Message
from leaseq.compat.localqueue import _policies as P
from leaseq.compat.localqueue._model import QueueMessage, QueueStats, from_message

__all__ = ["DEFAULT_STORE_PATH", "WORKERS_SUFFIX", "PersistentQueue"]

#: The side queue ``<name><suffix>`` that keeps worker sightings for ``stats()``.
WORKERS_SUFFIX = ".localqueue-workers"

#: Where the queue lives when neither ``store`` nor ``store_path`` is given.
DEFAULT_STORE_PATH = "localqueue.sqlite3"

_POLICY_NAMES = (
    "semantics",
    "locality_policy",
    "lease_policy",
    "acknowledgement_policy",
    "dead_letter_policy",
    "deduplication_policy",
    "consumption_policy",
    "dispatch_policy",
    "notification_policy",
    "delivery_policy",
    "ordering_policy",
    "routing_policy",
    "subscription_policy",
    "backpressure",
)
_DEFAULTS: dict[str, Any] = {
    "semantics": P.LOCAL_AT_LEAST_ONCE,
    "locality_policy": P.LOCAL_QUEUE_PLACEMENT,
    "lease_policy": None,
    "acknowledgement_policy": P.EXPLICIT_ACKNOWLEDGEMENT,
    "dead_letter_policy": P.DEAD_LETTER_QUEUE,
    "deduplication_policy": P.DEDUPE_KEY_SUPPORT,
    "consumption_policy": P.PULL_CONSUMPTION,
    "dispatch_policy": P.NO_DISPATCHER,
    "notification_policy": P.NO_NOTIFICATION,
    "delivery_policy": P.AT_LEAST_ONCE_DELIVERY,
    "ordering_policy": P.FIFO_READY_ORDERING,
    "routing_policy": P.POINT_TO_POINT_ROUTING,
    "subscription_policy": P.NO_SUBSCRIPTIONS,
    "backpressure": None,
}


def _resolve(explicit: dict[str, Any], policy_set: P.QueuePolicySet | None) -> dict[str, Any]:
    chosen = dict(_DEFAULTS)
    bundled = policy_set.items() if policy_set is not None else {}
    for name, value in explicit.items():
        if value is None:
            continue
        if name in bundled:
            raise ValueError(f"{name} is set both explicitly and in policy_set; choose one")
        chosen[name] = value
    chosen.update(bundled)
    return chosen


def _store_url(store: Any, store_path: str | None) -> Any:
    if store is not None and store_path is not None:
        raise ValueError("pass store= or store_path=, not both")
    if store is not None:
        return store
    return f"sqlite:///{store_path or DEFAULT_STORE_PATH}"


class PersistentQueue:
    """localqueue's persistent queue: queue.Queue-style methods plus explicit
    message methods, on a leaseq queue. ``store`` is a leaseq URL or store object."""

    def __init__(
        self,
        name: str = "default",
        *,
        store: Any = None,
        store_path: str | None = None,
        lease_timeout: float = 30.0,
        maxsize: int = 0,
        retry_defaults: dict[str, Any] | None = None,
        policy_set: P.QueuePolicySet | None = None,
        spec: Any = None,
        clock: Callable[[], float] | None = None,
        **policies: Any,
    ) -> None:
        if spec is not None:
            name, policy_set, retry_defaults = spec.queue_settings(name, policy_set, retry_defaults)
        unknown = set(policies) - set(_POLICY_NAMES)
        if unknown:
            raise TypeError(f"unknown PersistentQueue option(s): {', '.join(sorted(unknown))}")
        self._p = p = _resolve(policies, policy_set)
        self.retry_defaults = dict(retry_defaults or {})
        lease = p["lease_policy"]
        if lease is not None:
            lease_timeout = lease.timeout
        maxsize, overflow = self._capacity(maxsize, p["backpressure"])
        fanout = isinstance(p["routing_policy"], P.PublishSubscribeRouting)
        subs = tuple(getattr(p["subscription_policy"], "subscribers", ())) if fanout else ()
        if fanout and not subs:
            raise ValueError("PublishSubscribeRouting needs StaticFanoutSubscriptions([...])")
        self.name = name
        self._q = leaseq.Queue(
            _store_url(store, store_path),
            name=name,
            lease_timeout=lease_timeout,
            maxsize=maxsize,
            overflow=overflow,
            clock=clock,
            subscribers=subs or None,
        )
        self._lease_timeout = lease_timeout
        self._clock = clock
        self._aq: leaseq.AsyncQueue | None = None
        self._aq_options: dict[str, Any] = {
            "name": name,
            "lease_timeout": lease_timeout,
            "maxsize": maxsize,
            "overflow": overflow,
            "clock": clock,
            "subscribers": subs or None,
        }
        self._local = threading.local()
        self._unfinished = 0
        self._all_done = threading.Condition()
        # Worker sightings (``leased_by``) for stats(): one record per worker id and
        # queue object, in a side queue of the same store (see ``_saw``).
        self._workers = leaseq.Queue(self._q.store, name=f"{name}{WORKERS_SUFFIX}", clock=clock)
        self._instance = uuid.uuid4().hex[:12]
        self._leases_by: dict[str, int] = {}
        self._seen_lock = threading.Lock()

    @staticmethod
    def _capacity(maxsize: int, backpressure: Any) -> tuple[int, str]:
        if backpressure is None:
            return maxsize, "block"
        if maxsize and maxsize != backpressure.maxsize:
            raise ValueError("maxsize and backpressure.maxsize disagree; pass one of them")
        return backpressure.maxsize, backpressure.overflow

    @classmethod
    def from_spec(cls, spec: Any, **options: Any) -> PersistentQueue:
        """The queue a ``QueueSpec`` describes."""
        return cls(spec=spec, **options)

    # -- policies -------------------------------------------------------------------
    @property
    def leaseq_queue(self) -> leaseq.Queue:
        """The underlying ``leaseq.Queue``."""
        return self._q

    def async_queue(self) -> leaseq.AsyncQueue:
        """A ``leaseq.AsyncQueue`` on the same store and queue (for async workers)."""
        if self._aq is None:
            self._aq = leaseq.AsyncQueue(self._q.store, **self._aq_options)
        return self._aq

    @property
    def delivery_policy(self) -> Any:
        return self._p["delivery_policy"]

    @property
    def ordering_policy(self) -> Any:
        return self._p["ordering_policy"]

    def policy(self, name: str) -> Any:
        """The policy in effect for ``name`` (e.g. ``"routing_policy"``)."""
        return self._p[name]

    @property
    def _at_most_once(self) -> bool:
        return isinstance(self._p["delivery_policy"], P.AtMostOnceDelivery)

    # -- put ------------------------------------------------------------------------
    def put(
        self,
        item: Any,
        block: bool = True,
        timeout: float | None = None,
        delay: float = 0.0,
        priority: int = 0,
        dedupe_key: str | None = None,
    ) -> QueueMessage:
        """Store ``item``; a ``dedupe_key`` already live reuses that message unchanged."""
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
            raise ValueError(f"priority must be a non-negative int, got {priority!r}")
        self._check_dedupe(dedupe_key)
        opts: dict[str, Any] = {
            "priority": priority if self._p["ordering_policy"].uses_priority else 0,
            "delay": delay,
        }
        if dedupe_key is not None:
            opts.update(key=dedupe_key, if_ready="keep", if_in_flight="keep")
        if self._q.subscribers:
            msg = self._q.publish(item, **opts)[0]
        else:
            msg = self._q.put(item, block=block, timeout=timeout, **opts)
        out = from_message(self.name, msg)
        self._after_put(out)
        return out

    def _check_dedupe(self, dedupe_key: str | None) -> None:
        if dedupe_key is None:
            if isinstance(self._p["delivery_policy"], P.EffectivelyOnceDelivery):
                raise ValueError("EffectivelyOnceDelivery requires put(..., dedupe_key=...)")
            return
        if isinstance(self._p["deduplication_policy"], P.NoDeduplication):
            raise ValueError("this queue uses NoDeduplication: dedupe_key is not accepted")
        if not isinstance(dedupe_key, str) or not dedupe_key:
            raise ValueError(f"dedupe_key must be a non-empty string, got {dedupe_key!r}")

    def _after_put(self, message: QueueMessage) -> None:
        for handler in getattr(self._p["dispatch_policy"], "handlers", ()):
            handler(message)
        self._p["notification_policy"].notify(message)

    def put_nowait(self, item: Any) -> QueueMessage:
        return self.put(item, block=False)

    # -- get ------------------------------------------------------------------------
    def _claim(self, block: bool, timeout: float | None, leased_by: str | None) -> Lease:
        lease = self._q.get(block=block, timeout=timeout, owner=leased_by)
        if leased_by is not None:
            self._saw(leased_by)
        return lease

    def _saw(self, worker_id: str) -> None:
        """Record that ``worker_id`` took a lease now: its record (this queue object's
        count of its leases, and the time) replaces the previous one. Each record has
        one writer, so counts add up across processes without read-modify-write."""
        with self._seen_lock:
            n = self._leases_by[worker_id] = self._leases_by.get(worker_id, 0) + 1
            self._workers.put(
                {"worker": worker_id, "leases": n, "at": self._now()},
                key=f"{worker_id}\x1f{self._instance}",
            )

    def get_message(
        self, block: bool = True, timeout: float | None = None, leased_by: str | None = None
    ) -> QueueMessage:
        """Lease one message. With ``AtMostOnceDelivery`` it is removed first."""
        lease = self._claim(block, timeout, leased_by)
        if self._at_most_once:
            self._q.ack(lease)
            out = from_message(self.name, lease.message)
            out.state = "acked"
            return out
        return from_message(self.name, lease.message, lease)

    def get(
        self, block: bool = True, timeout: float | None = None, leased_by: str | None = None
    ) -> Any:
        """Lease one message and return its value; finish it with ``task_done()``."""
        lease = self._claim(block, timeout, leased_by)
        if self._at_most_once:
            self._q.ack(lease)
        pending = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = collections.deque()
        pending.append(None if self._at_most_once else lease)
        with self._all_done:
            self._unfinished += 1
        return lease.value

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def task_done(self) -> None:
        """Ack the oldest unfinished ``get()`` of this thread (``ValueError`` if none).
        Raises ``leaseq.LeaseLost`` if that lease ran out (the work may run again)."""
        pending = getattr(self._local, "pending", None)
        if not pending:
            raise ValueError("task_done() called more times than get() in this thread")
        lease = pending.popleft()
        try:
            if lease is not None:
                self._q.ack(lease)
        finally:
            with self._all_done:
                self._unfinished -= 1
                if self._unfinished <= 0:
                    self._all_done.notify_all()

    def join(self) -> None:
        """Wait until every ``get()`` of this queue object has had its ``task_done()``."""
        with self._all_done:
            while self._unfinished > 0:
                self._all_done.wait()

    # -- explicit message methods ---------------------------------------------------
    @staticmethod
    def _lease_of(message: QueueMessage) -> Lease:
        lease = getattr(message, "_lease", None)
        if not isinstance(lease, Lease):
            raise ValueError(
                f"message {getattr(message, 'id', message)!r} carries no lease: pass the "
                "QueueMessage that get_message() returned"
            )
        return lease

    def ack(self, message: QueueMessage) -> None:
        """Remove the message; fenced by its lease (``leaseq.LeaseLost`` when it ran out)."""
        if self._at_most_once and getattr(message, "_lease", None) is None:
            return  # already removed by get_message()
        self._q.ack(self._lease_of(message))

    def release(self, message: QueueMessage, delay: float = 0.0, error: Any = None) -> QueueMessage:
        """Hand the message back after ``delay``, recording ``error``."""
        msg = self._q.release(self._lease_of(message), delay=delay, error=_err(error))
        return from_message(self.name, msg)

    def dead_letter(self, message: QueueMessage, error: Any = None) -> QueueMessage:
        msg = self._q.dead_letter(self._lease_of(message), error=_err(error))
        return from_message(self.name, msg)

    def inspect(self, message_id: str) -> QueueMessage:
        """Read one message (``leaseq.MessageNotFound``, a ``LookupError``, if unknown)."""
        return from_message(self.name, self._q.inspect(_id(message_id)))

    # -- dead letters ---------------------------------------------------------------
    def dead_letters(self, limit: int | None = None) -> list[QueueMessage]:
        return [from_message(self.name, m) for m in self._q.dead_letters(limit=limit)]

    def requeue_dead(self, message: QueueMessage | str, delay: float = 0.0) -> QueueMessage:
        return from_message(self.name, self._q.requeue_dead(_id(message), delay=delay))

    def prune_dead_letters(self, older_than: float) -> int:
        return self._q.prune_dead(older_than=older_than)

    def count_dead_letters_older_than(self, older_than: float) -> int:
        cutoff = self._now() - older_than
        return sum(1 for m in self._q.dead_letters() if _died_at(m) <= cutoff)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    # -- sizes and maintenance --------------------------------------------------------
    def qsize(self) -> int:
        """Messages ready to be delivered now."""
        return self._q.qsize()

    def empty(self) -> bool:
        return self._q.empty()

    def full(self) -> bool:
        return self._q.full()

    def stats(self) -> QueueStats:
        """localqueue's stats; the worker fields come from every queue object's
        sightings of ``leased_by`` ids on this store (see ``_saw``)."""
        leases: dict[str, int] = {}
        seen: dict[str, float] = {}
        for key in self._workers.keys(leaseq.State.READY):
            msg = self._workers.peek(key)
            if msg is None:
                continue
            who, n, at = msg.value["worker"], msg.value["leases"], msg.value["at"]
            leases[who] = leases.get(who, 0) + n
            seen[who] = max(seen.get(who, at), at)
        return QueueStats.from_leaseq(self._q.stats(), leases, seen)

    def purge(self) -> int:
        self._workers.purge()
        with self._seen_lock:
            self._leases_by.clear()
        return self._q.purge()

    def close(self) -> None:
        # The AsyncQueue (if any) shares this queue's store, which closing this one closes.
        self._aq = None
        self._workers.close()  # (it does not own the store: the line below closes it)
        self._q.close()

    def __enter__(self) -> PersistentQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PersistentQueue({self.name!r}, store={self._q.store.url!r})"


def _err(error: Any) -> Any:
    return error if error is None or isinstance(error, (str, BaseException)) else str(error)


def _id(message: Any) -> str:
    return message.id if isinstance(message, (QueueMessage, Message)) else str(message)


def _died_at(m: Message) -> float:
    for e in reversed(m.history):
        if e.kind == "dead":
            return e.at
    return m.created_at
