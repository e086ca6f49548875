"""localqueue's policy objects, mapped onto leaseq options.

The ones that change behaviour are translated by ``PersistentQueue``:

* delivery: ``AtLeastOnceDelivery`` (leaseq's model), ``AtMostOnceDelivery``
  (the message is acked before ``get`` returns it), ``EffectivelyOnceDelivery``
  (``dedupe_key`` required on ``put``; workers record results in leaseq's results
  ledger in the same step as the ack and skip keys that already succeeded);
* ordering: ``FifoReadyOrdering`` (priorities are ignored: every put goes in at
  priority 0), ``PriorityOrdering`` (leaseq priorities; higher first),
  ``BestEffortOrdering`` (as FIFO: leaseq's order is always defined);
* backpressure: ``BoundedBackpressure(maxsize, overflow="block")`` and
  ``RejectingBackpressure(maxsize)`` -> leaseq ``maxsize``/``overflow``;
* routing: ``PublishSubscribeRouting`` + ``StaticFanoutSubscriptions`` -> leaseq
  ``subscribers=`` (``put`` writes one copy per ``<name>.<subscriber>`` queue,
  all or none);
* leases: ``FixedLeaseTimeout(timeout)`` -> ``lease_timeout``;
* deduplication: ``NoDeduplication`` refuses ``dedupe_key``;
* dispatch/notification callbacks run after a put is stored.

The others describe what leaseq already does and are plain value objects.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = [
    "AT_LEAST_ONCE_DELIVERY",
    "DEAD_LETTER_QUEUE",
    "DEDUPE_KEY_SUPPORT",
    "EXPLICIT_ACKNOWLEDGEMENT",
    "FIFO_READY_ORDERING",
    "LOCAL_AT_LEAST_ONCE",
    "LOCAL_QUEUE_PLACEMENT",
    "NO_DISPATCHER",
    "NO_NOTIFICATION",
    "NO_SUBSCRIPTIONS",
    "POINT_TO_POINT_ROUTING",
    "PULL_CONSUMPTION",
    "AtLeastOnceDelivery",
    "AtMostOnceDelivery",
    "BestEffortOrdering",
    "BoundedBackpressure",
    "CallbackDispatcher",
    "CallbackNotification",
    "DeadLetterQueue",
    "DedupeKeySupport",
    "EffectivelyOnceDelivery",
    "ExplicitAcknowledgement",
    "FifoReadyOrdering",
    "FixedLeaseTimeout",
    "InProcessNotification",
    "LocalAtomicCommit",
    "LocalQueuePlacement",
    "NoDeduplication",
    "NoDispatcher",
    "NoNotification",
    "NoResultPolicy",
    "NoSubscriptions",
    "PointToPointRouting",
    "PriorityOrdering",
    "PublishSubscribeRouting",
    "PullConsumption",
    "PushConsumption",
    "QoS",
    "QueuePolicySet",
    "QueueSemantics",
    "RejectingBackpressure",
    "RemoteQueuePlacement",
    "ReturnStoredResult",
    "SagaCommit",
    "StaticFanoutSubscriptions",
    "TransactionalOutboxCommit",
    "TwoPhaseCommit",
]


# -- descriptive ------------------------------------------------------------------
@dataclass(frozen=True)
class LocalQueuePlacement:
    locality: str = "local"


@dataclass(frozen=True)
class RemoteQueuePlacement:
    locality: str = "remote"


@dataclass(frozen=True)
class FixedLeaseTimeout:
    """Leases last ``timeout`` seconds (leaseq ``lease_timeout``)."""

    timeout: float = 30.0


@dataclass(frozen=True)
class ExplicitAcknowledgement:
    mode: str = "explicit"


@dataclass(frozen=True)
class DeadLetterQueue:
    enabled: bool = True


@dataclass(frozen=True)
class DedupeKeySupport:
    enabled: bool = True


@dataclass(frozen=True)
class NoDeduplication:
    enabled: bool = False


@dataclass(frozen=True)
class PullConsumption:
    pattern: str = "pull"


@dataclass(frozen=True)
class PushConsumption:
    pattern: str = "push"


@dataclass(frozen=True)
class PointToPointRouting:
    pattern: str = "point-to-point"
    fanout: bool = False


@dataclass(frozen=True)
class PublishSubscribeRouting:
    """With ``StaticFanoutSubscriptions``, ``put`` fans out to every subscriber queue."""

    pattern: str = "publish-subscribe"
    fanout: bool = True


@dataclass(frozen=True)
class NoSubscriptions:
    subscribers: tuple[str, ...] = ()


@dataclass(frozen=True)
class StaticFanoutSubscriptions:
    """A fixed subscriber set: one physical queue ``<name>.<subscriber>`` each."""

    subscribers: tuple[str, ...] = ()

    def __init__(self, subscribers: Sequence[str] = ()) -> None:
        object.__setattr__(self, "subscribers", tuple(subscribers))


# -- ordering ---------------------------------------------------------------------
@dataclass(frozen=True)
class FifoReadyOrdering:
    """Availability order; ``put(priority=)`` is ignored."""

    guarantee: str = "fifo-ready"
    uses_priority: bool = False


@dataclass(frozen=True)
class PriorityOrdering:
    """Higher ``priority`` first (leaseq's order, which does not depend on clock ties)."""

    guarantee: str = "priority"
    uses_priority: bool = True


@dataclass(frozen=True)
class BestEffortOrdering:
    guarantee: str = "best-effort"
    uses_priority: bool = False


# -- delivery ---------------------------------------------------------------------
@dataclass(frozen=True)
class NoResultPolicy:
    store_results: bool = False


@dataclass(frozen=True)
class ReturnStoredResult:
    """Successful results go to leaseq's results ledger; duplicates get them back.
    (``result_store`` is accepted for compatibility; the ledger lives in the queue's store.)"""

    result_store: Any = None
    store_results: bool = True


@dataclass(frozen=True)
class LocalAtomicCommit:
    model: str = "local-atomic"


@dataclass(frozen=True)
class TransactionalOutboxCommit:
    outbox_store: Any = None
    model: str = "transactional-outbox"


@dataclass(frozen=True)
class TwoPhaseCommit:
    prepare_store: Any = None
    commit_store: Any = None
    model: str = "two-phase"


@dataclass(frozen=True)
class SagaCommit:
    saga_store: Any = None
    model: str = "saga"


@dataclass(frozen=True)
class AtLeastOnceDelivery:
    guarantee: str = "at-least-once"


@dataclass(frozen=True)
class AtMostOnceDelivery:
    """``get``/``get_message`` remove the message before returning it."""

    guarantee: str = "at-most-once"


@dataclass(frozen=True)
class EffectivelyOnceDelivery:
    """``put`` requires ``dedupe_key``; worker helpers skip keys that already succeeded
    (leaseq ``idempotent=True``: the result is recorded in the same step as the ack)."""

    idempotency_store: Any = None
    result_policy: Any = field(default_factory=NoResultPolicy)
    commit_policy: Any = field(default_factory=LocalAtomicCommit)
    guarantee: str = "effectively-once"


# -- backpressure -----------------------------------------------------------------
@dataclass(frozen=True)
class BoundedBackpressure:
    """``maxsize`` live messages at most (0: unbounded); a full put blocks."""

    maxsize: int = 0
    overflow: str = "block"


@dataclass(frozen=True)
class RejectingBackpressure:
    """A full put raises ``queue.Full`` at once, even with ``block=True``."""

    maxsize: int = 0
    overflow: str = "reject"


# -- dispatch and notification ----------------------------------------------------
@dataclass(frozen=True)
class NoDispatcher:
    handlers: tuple[Callable[[Any], Any], ...] = ()


@dataclass(frozen=True)
class CallbackDispatcher:
    """Calls each handler with the stored ``QueueMessage`` after ``put`` (in-process)."""

    handlers: tuple[Callable[[Any], Any], ...] = ()

    def __init__(self, *handlers: Callable[[Any], Any]) -> None:
        flat: list[Callable[[Any], Any]] = []
        for h in handlers:
            flat.extend(h if isinstance(h, (list, tuple)) else [h])
        object.__setattr__(self, "handlers", tuple(flat))


@dataclass(frozen=True)
class NoNotification:
    listeners: tuple[Callable[[Any], Any], ...] = ()

    def notify(self, message: Any) -> None:
        return None


@dataclass(frozen=True)
class CallbackNotification:
    """Calls each listener with the stored ``QueueMessage`` after ``put`` (in-process)."""

    listeners: tuple[Callable[[Any], Any], ...] = ()

    def __init__(self, *listeners: Callable[[Any], Any]) -> None:
        flat: list[Callable[[Any], Any]] = []
        for h in listeners:
            flat.extend(h if isinstance(h, (list, tuple)) else [h])
        object.__setattr__(self, "listeners", tuple(flat))

    def notify(self, message: Any) -> None:
        for listener in self.listeners:
            listener(message)


class InProcessNotification:
    """A ``threading.Event`` set after each put (in-process only)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def notify(self, message: Any) -> None:
        self.event.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.event.wait(timeout)

    def clear(self) -> None:
        self.event.clear()


# -- bundles ----------------------------------------------------------------------
@dataclass(frozen=True)
class QueueSemantics:
    """What a configuration means, in words (descriptive)."""

    locality: str = "local"
    delivery: str = "at-least-once"
    routing: str = "point-to-point"
    consumption: str = "pull"
    ordering: str = "fifo-ready"
    leases: bool = True
    acknowledgements: bool = True
    dead_letters: bool = True
    dedupe_keys: bool = True
    subscriptions: bool = False
    notifications: bool = False


LOCAL_AT_LEAST_ONCE = QueueSemantics()
LOCAL_QUEUE_PLACEMENT = LocalQueuePlacement()
EXPLICIT_ACKNOWLEDGEMENT = ExplicitAcknowledgement()
DEAD_LETTER_QUEUE = DeadLetterQueue()
DEDUPE_KEY_SUPPORT = DedupeKeySupport()
PULL_CONSUMPTION = PullConsumption()
NO_DISPATCHER = NoDispatcher()
NO_NOTIFICATION = NoNotification()
AT_LEAST_ONCE_DELIVERY = AtLeastOnceDelivery()
FIFO_READY_ORDERING = FifoReadyOrdering()
POINT_TO_POINT_ROUTING = PointToPointRouting()
NO_SUBSCRIPTIONS = NoSubscriptions()


@dataclass(frozen=True)
class QueuePolicySet:
    """A reusable bundle of queue policies; ``None`` fields keep the default.
    An option passed to ``PersistentQueue`` that is also set here is an error."""

    locality_policy: Any = None
    lease_policy: Any = None
    acknowledgement_policy: Any = None
    dead_letter_policy: Any = None
    deduplication_policy: Any = None
    consumption_policy: Any = None
    dispatch_policy: Any = None
    notification_policy: Any = None
    delivery_policy: Any = None
    ordering_policy: Any = None
    routing_policy: Any = None
    subscription_policy: Any = None
    backpressure: Any = None
    semantics: Any = None

    @classmethod
    def at_least_once(cls, **policies: Any) -> QueuePolicySet:
        return cls(delivery_policy=AtLeastOnceDelivery(), **policies)

    @classmethod
    def at_most_once(cls, **policies: Any) -> QueuePolicySet:
        return cls(delivery_policy=AtMostOnceDelivery(), **policies)

    @classmethod
    def effectively_once(
        cls,
        *,
        idempotency_store: Any = None,
        result_policy: Any = None,
        commit_policy: Any = None,
        **policies: Any,
    ) -> QueuePolicySet:
        delivery = EffectivelyOnceDelivery(
            idempotency_store=idempotency_store,
            result_policy=result_policy or NoResultPolicy(),
            commit_policy=commit_policy or LocalAtomicCommit(),
        )
        return cls(delivery_policy=delivery, **policies)

    def items(self) -> dict[str, Any]:
        """The policies this set names (fields that are not None)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def with_(self, **policies: Any) -> QueuePolicySet:
        return replace(self, **policies)


class QoS(enum.Enum):
    """Delivery guarantees for ``QueueSpec.with_qos``."""

    AT_LEAST_ONCE = "at-least-once"
    AT_MOST_ONCE = "at-most-once"
    EFFECTIVELY_ONCE = "effectively-once"

    def delivery_policy(self) -> Any:
        return {
            QoS.AT_LEAST_ONCE: AtLeastOnceDelivery,
            QoS.AT_MOST_ONCE: AtMostOnceDelivery,
            QoS.EFFECTIVELY_ONCE: EffectivelyOnceDelivery,
        }[self]()
