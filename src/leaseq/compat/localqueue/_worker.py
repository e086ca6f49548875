"""``PersistentWorkerConfig``, ``persistent_worker``, ``persistent_async_worker`` on
``leaseq.Worker``.

``@persistent_worker(queue, config=...)`` turns ``handle(payload)`` into a
``leaseq.Worker`` over the queue: calling it still calls the function;
``handle.run()`` consumes the queue until ``stop()`` or SIGINT/SIGTERM (or
``await handle.run_async()``). A retry is a release with the backoff delay (a
new claim, counted by the store), never a sleep while holding the lease, so
the message's attempt count is the persistent retry count. With
``EffectivelyOnceDelivery`` the worker is ``idempotent``: results go to the
results ledger in the same step as the ack and keys that already succeeded
are acked without running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import leaseq
from leaseq.compat.localqueue._options import translate_retry_kwargs
from leaseq.compat.localqueue._policies import EffectivelyOnceDelivery

__all__ = ["PersistentWorkerConfig", "persistent_async_worker", "persistent_worker"]


@dataclass
class PersistentWorkerConfig:
    """Worker behaviour shared by many queues. ``retry_kwargs``: ``max_tries``,
    ``stop``, ``wait``, ``retry`` (see ``leaseq.compat.localqueue.retry``)."""

    dead_letter_on_failure: bool = True
    dead_letter_on_exhaustion: bool | None = None
    release_delay: float = 0.0
    min_interval: float = 0.0
    circuit_breaker_failures: int = 0
    circuit_breaker_cooldown: float = 30.0
    retry_kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        *,
        dead_letter_on_failure: bool = True,
        dead_letter_on_exhaustion: bool | None = None,
        release_delay: float = 0.0,
        min_interval: float = 0.0,
        circuit_breaker_failures: int = 0,
        circuit_breaker_cooldown: float = 30.0,
        **retry_kwargs: Any,
    ) -> None:
        if dead_letter_on_exhaustion is not None:  # the compatibility alias wins if given
            dead_letter_on_failure = dead_letter_on_exhaustion
        self.dead_letter_on_failure = dead_letter_on_failure
        self.dead_letter_on_exhaustion = dead_letter_on_exhaustion
        self.release_delay = release_delay
        self.min_interval = min_interval
        self.circuit_breaker_failures = circuit_breaker_failures
        self.circuit_breaker_cooldown = circuit_breaker_cooldown
        self.retry_kwargs = dict(retry_kwargs)

    def merged(self, **overrides: Any) -> PersistentWorkerConfig:
        """A copy with worker options and retry keywords overridden."""
        own: dict[str, Any] = {
            "dead_letter_on_failure": self.dead_letter_on_failure,
            "release_delay": self.release_delay,
            "min_interval": self.min_interval,
            "circuit_breaker_failures": self.circuit_breaker_failures,
            "circuit_breaker_cooldown": self.circuit_breaker_cooldown,
        }
        retry = dict(self.retry_kwargs)
        for name, value in overrides.items():
            if name == "dead_letter_on_exhaustion":
                own["dead_letter_on_failure"] = value
            elif name in own:
                own[name] = value
            else:
                retry[name] = value
        return PersistentWorkerConfig(**own, **retry)

    def worker_options(self, queue: Any) -> dict[str, Any]:
        """The ``leaseq.Worker`` keywords this config (over ``queue``'s defaults) means."""
        retry_kw = translate_retry_kwargs({**queue.retry_defaults, **self.retry_kwargs})
        retry_kw.pop("store", None)  # the queue's own store counts the attempts
        if "backoff" not in retry_kw and self.release_delay:
            retry_kw["backoff"] = leaseq.Backoff.fixed(self.release_delay)
        opts: dict[str, Any] = {
            "retry": leaseq.Retry(**retry_kw),
            "on_failure": "dead_letter" if self.dead_letter_on_failure else "release",
            "min_interval": self.min_interval,
            "idempotent": isinstance(queue.delivery_policy, EffectivelyOnceDelivery),
        }
        if self.circuit_breaker_failures:
            opts["circuit_breaker"] = leaseq.CircuitBreaker(
                failure_threshold=self.circuit_breaker_failures,
                reset_timeout=self.circuit_breaker_cooldown,
            )
        return opts


def _decorator(
    queue: Any, config: PersistentWorkerConfig | None, kwargs: dict[str, Any], use_async: bool
) -> Callable[[Callable[..., Any]], leaseq.Worker]:
    cfg = (config or PersistentWorkerConfig()).merged(**kwargs)
    options = cfg.worker_options(queue)

    def decorate(fn: Callable[..., Any]) -> leaseq.Worker:
        target = queue.async_queue() if use_async else queue.leaseq_queue
        return leaseq.Worker(target, fn, **options)

    return decorate


def persistent_worker(
    queue: Any, config: PersistentWorkerConfig | None = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], leaseq.Worker]:
    """Decorate ``handle(payload)`` into a ``leaseq.Worker`` over ``queue``
    (a ``PersistentQueue``); keyword arguments override ``config``."""
    return _decorator(queue, config, kwargs, use_async=False)


def persistent_async_worker(
    queue: Any, config: PersistentWorkerConfig | None = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], leaseq.Worker]:
    """As ``persistent_worker``, over a ``leaseq.AsyncQueue`` on the same store:
    ``await handle.run_async()`` never blocks the event loop."""
    return _decorator(queue, config, kwargs, use_async=True)
