"""``QueueSpec``: a fluent, immutable description of a queue and its worker defaults."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from leaseq.compat.localqueue._policies import (
    DeadLetterQueue,
    QoS,
    QueuePolicySet,
)
from leaseq.compat.localqueue._worker import PersistentWorkerConfig

__all__ = ["QueueSpec"]


@dataclass(frozen=True)
class QueueSpec:
    """Each ``with_*`` returns a new spec; ``build_queue()`` and
    ``build_worker_config()`` make the runtime objects."""

    name: str | None = None
    qos: QoS = QoS.AT_LEAST_ONCE
    dead_letter_queue: bool = False
    retry: dict[str, Any] = field(default_factory=dict)
    dead_letter_on_failure: bool | None = None
    release_delay: float | None = None
    min_interval: float | None = None
    circuit_breaker: tuple[int, float] | None = None

    def with_name(self, name: str) -> QueueSpec:
        return replace(self, name=name)

    def with_qos(self, qos: QoS) -> QueueSpec:
        return replace(self, qos=QoS(qos))

    def with_dead_letter_queue(self) -> QueueSpec:
        return replace(self, dead_letter_queue=True)

    def with_retry(self, **retry_kwargs: Any) -> QueueSpec:
        return replace(self, retry={**self.retry, **retry_kwargs})

    def with_dead_letter_on_failure(self, enabled: bool = True) -> QueueSpec:
        return replace(self, dead_letter_on_failure=enabled)

    def with_release_delay(self, seconds: float) -> QueueSpec:
        return replace(self, release_delay=seconds)

    def with_min_interval(self, seconds: float) -> QueueSpec:
        return replace(self, min_interval=seconds)

    def with_circuit_breaker(self, failures: int, cooldown: float = 30.0) -> QueueSpec:
        return replace(self, circuit_breaker=(failures, cooldown))

    def policy_set(self) -> QueuePolicySet:
        """The queue policies the spec names."""
        extra: dict[str, Any] = {"delivery_policy": self.qos.delivery_policy()}
        if self.dead_letter_queue:
            extra["dead_letter_policy"] = DeadLetterQueue()
        return QueuePolicySet(**extra)

    def queue_settings(
        self, name: str, policy_set: QueuePolicySet | None, retry_defaults: dict[str, Any] | None
    ) -> tuple[str, QueuePolicySet, dict[str, Any]]:
        """What ``PersistentQueue(spec=...)`` uses (explicit arguments win for name/retry)."""
        if policy_set is not None:
            raise ValueError("pass spec= or policy_set=, not both")
        chosen = self.name if self.name is not None and name == "default" else name
        return chosen, self.policy_set(), {**self.retry, **(retry_defaults or {})}

    def build_queue(self, **options: Any) -> Any:
        """``PersistentQueue(spec=self, **options)``."""
        from leaseq.compat.localqueue._queue import PersistentQueue

        return PersistentQueue(spec=self, **options)

    def build_worker_config(self) -> PersistentWorkerConfig:
        opts: dict[str, Any] = dict(self.retry)
        if self.dead_letter_on_failure is not None:
            opts["dead_letter_on_failure"] = self.dead_letter_on_failure
        if self.release_delay is not None:
            opts["release_delay"] = self.release_delay
        if self.min_interval is not None:
            opts["min_interval"] = self.min_interval
        if self.circuit_breaker is not None:
            opts["circuit_breaker_failures"], opts["circuit_breaker_cooldown"] = (
                self.circuit_breaker
            )
        return PersistentWorkerConfig(**opts)
