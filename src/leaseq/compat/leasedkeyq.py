"""Drop-in ``leasedkeyq.LeasedKeyQueue`` over ``leaseq.AsyncQueue("memory://")``.

Change ``from leasedkeyq import LeasedKeyQueue`` to
``from leaseq.compat.leasedkeyq import LeasedKeyQueue``. Same names, return
shapes ``(key, value, lease)`` and exception names; the queue logic is
leaseq's, so the original's bugs are gone:

* ``if_in_flight="buffer"`` keeps one follow-up per key (the original queued a
  second copy, so one key could be leased twice at once);
* ``timeout=`` is a total deadline (the original restarted it on every wake-up);
* a put wakes one getter and only the takers of its key (no ``notify_all`` herd);
* nothing is kept after an ack (the original kept every acked token forever);
* lease expiry needs no reaper task polling every 100 ms;
* after ``close()`` every call, including a blocked ``get()``, raises
  ``QueueClosedError``.

Keys may be any hashable object (leaseq keys are strings: each distinct key
gets a code for as long as it is in the queue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import leaseq

__all__ = [
    "InFlightPolicy",
    "InvalidLeaseError",
    "Lease",
    "LeaseAlreadyAcknowledgedError",
    "LeasedKeyQError",
    "LeasedKeyQueue",
    "QueueClosedError",
]

K = TypeVar("K")
V = TypeVar("V")
InFlightPolicy = Literal["update", "reject", "buffer"]
_NO_EXPIRY = 10 * 365 * 86400.0  # "no lease timeout": ten years


class LeasedKeyQError(Exception):
    """Base exception of the leasedkeyq API."""


class KeyAlreadyInFlightError(LeasedKeyQError):
    """``put(if_in_flight="reject")`` on a leased key."""


class InvalidLeaseError(LeasedKeyQError):
    """The lease is unknown, expired, or its key was claimed again."""


class LeaseAlreadyAcknowledgedError(LeasedKeyQError):
    """The lease was already acknowledged (or its message removed)."""


class QueueClosedError(LeasedKeyQError):
    """The queue is closed."""


@dataclass(frozen=True)
class Lease(Generic[K]):
    """Exclusive access to one keyed item: ``token`` and ``key`` as in leasedkeyq."""

    token: str
    key: K
    _lease: leaseq.Lease = field(repr=False, compare=False)


class LeasedKeyQueue(Generic[K, V]):
    """An async keyed leased queue with FIFO order (leasedkeyq's API on leaseq)."""

    def __init__(self, *, default_lease_timeout: float | None = None) -> None:
        self._default_lease_timeout = default_lease_timeout
        self._q = leaseq.AsyncQueue(
            "memory://",
            lease_timeout=_NO_EXPIRY if default_lease_timeout is None else default_lease_timeout,
        )
        self._codes: dict[Any, str] = {}  # key -> leaseq key, while the key is in the queue
        self._keys: dict[str, Any] = {}
        self._n = 0
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Kept for compatibility: leaseq needs no background task."""
        self._check_open()

    async def close(self) -> None:
        """Close the queue: every later call, and every get/take blocked in it, raises
        QueueClosedError."""
        if self._closed:
            return
        self._closed = True
        await self._q.close()

    async def __aenter__(self) -> LeasedKeyQueue[K, V]:
        await self.start()
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()

    # -- producer ------------------------------------------------------------------
    async def put(self, key: K, value: V, *, if_in_flight: InFlightPolicy = "update") -> None:
        """Put a key's value: a new key joins the back; an available key gets the new
        value in place; a leased key follows ``if_in_flight``."""
        self._check_open()
        if if_in_flight not in ("update", "reject", "buffer"):
            raise ValueError(f"if_in_flight must be update, reject or buffer: {if_in_flight!r}")
        code = self._code(key)
        try:
            await self._q.put(value, key=code, if_in_flight=if_in_flight)
        except leaseq.KeyInFlight:
            raise KeyAlreadyInFlightError(f"Key {key!r} is currently in flight") from None
        except leaseq.Closed:
            raise QueueClosedError("Cannot put to a closed queue") from None

    # -- consumer ------------------------------------------------------------------
    async def get(
        self, timeout: float | None = None, *, lease_timeout: float | None = None
    ) -> tuple[K, V, Lease[K]]:
        """Lease the next item (FIFO); raises ``asyncio.TimeoutError`` after ``timeout``."""
        self._check_open()
        lease = await self._wait(self._q.get(timeout=timeout, lease_timeout=lease_timeout))
        return self._hand_out(lease)

    async def take(
        self, key: K, timeout: float | None = None, *, lease_timeout: float | None = None
    ) -> tuple[K, V, Lease[K]]:
        """Lease one key's item, waiting while it is absent or in flight."""
        self._check_open()
        code = self._code(key)
        lease = await self._wait(self._q.take(code, timeout=timeout, lease_timeout=lease_timeout))
        return self._hand_out(lease)

    async def ack(self, lease: Lease[K]) -> None:
        """Remove the item for good."""
        self._check_open()
        await self._settle(self._q.ack(self._unwrap(lease)))
        await self._forget_if_absent(lease.key)

    async def release(self, lease: Lease[K], *, requeue_front: bool = False) -> None:
        """Return the item to the queue, at the front or the back."""
        self._check_open()
        await self._settle(self._q.release(self._unwrap(lease), front=requeue_front))

    # -- introspection (available = READY, in flight = LEASED) ----------------------
    async def peek(self, key: K) -> V | None:
        """The value of an *available* key, else None (leasedkeyq's meaning)."""
        self._check_open()
        code = self._codes.get(key)
        msg = None if code is None else await self._q.peek(code)
        if msg is None or msg.state is not leaseq.State.READY:
            return None
        value: V = msg.value
        return value

    async def contains(self, key: K) -> bool:
        """Whether the key is available (not in flight)."""
        self._check_open()
        code = self._codes.get(key)
        msg = None if code is None else await self._q.peek(code)
        return msg is not None and msg.state is leaseq.State.READY

    async def available_keys(self) -> set[K]:
        """Keys currently available."""
        self._check_open()
        return {self._keys[c] for c in await self._q.keys(leaseq.State.READY)}

    async def inflight_keys(self) -> set[K]:
        """Keys currently leased."""
        self._check_open()
        return {self._keys[c] for c in await self._q.keys(leaseq.State.LEASED)}

    async def qsize(self) -> int:
        """How many items are available."""
        self._check_open()
        return await self._q.qsize()

    async def inflight_size(self) -> int:
        """How many items are leased."""
        self._check_open()
        return (await self._q.stats()).leased

    # -- helpers -------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosedError("the queue is closed")

    def _code(self, key: K) -> str:
        code = self._codes.get(key)
        if code is None:
            self._n += 1
            code = f"k{self._n}"
            self._codes[key] = code
            self._keys[code] = key
        return code

    async def _forget_if_absent(self, key: K) -> None:
        # Keeps the key table from growing: a key leaves it once it is absent.
        code = self._codes.get(key)
        if code is not None and await self._q.peek(code) is None:
            del self._codes[key]
            del self._keys[code]

    async def _wait(self, call: Any) -> leaseq.Lease:
        try:
            lease: leaseq.Lease = await call
            return lease
        except leaseq.Empty:
            raise TimeoutError() from None
        except leaseq.Closed:
            raise QueueClosedError("the queue was closed while waiting") from None

    def _hand_out(self, lease: leaseq.Lease) -> tuple[K, V, Lease[K]]:
        key: K = self._keys[lease.key]
        value: V = lease.value
        return key, value, Lease(token=lease.token, key=key, _lease=lease)

    @staticmethod
    def _unwrap(lease: Lease[K]) -> leaseq.Lease:
        if not isinstance(lease, Lease):
            raise InvalidLeaseError(f"Unknown lease: {lease!r}")
        return lease._lease

    async def _settle(self, call: Any) -> None:
        try:
            await call
        except leaseq.LeaseLost as exc:
            if exc.reason == "acked_or_removed":
                raise LeaseAlreadyAcknowledgedError(str(exc)) from exc
            raise InvalidLeaseError(str(exc)) from exc
        except leaseq.Closed:
            raise QueueClosedError("the queue is closed") from None
