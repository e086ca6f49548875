"""``leaseq.Worker``: run a handler over a queue with retries, heartbeats and a clean stop.

Guarantees (DESIGN §5):

* **At least once, never lost.** A message is acked only after its handler
  returned; a crash, a kill or an expired lease hands it to another claim.
* **A retry is a new claim.** A failed attempt is released with its backoff
  delay; attempts are counted by the store at claim time, so an attempt cut
  short by SIGKILL still counts and a poison message cannot loop forever.
  A message ends DEAD after ``max_attempts`` claims (the worker's
  ``Retry.max_attempts`` or the message's own, whichever is smaller; put
  messages with ``Queue(max_attempts=...)`` so that an attempt lost on the
  last try also dies in the store instead of being claimed once more).
* **Heartbeat.** While a handler runs, its lease is extended every third of
  ``lease_timeout``; a lease found lost is logged and its result dropped.
* **Effectively once** (``idempotent=True``): the result is written to the
  queue's results ledger in the same atomic step as the ack; a later message
  with a key that already succeeded is acked without running. A crash *before*
  that step runs the handler again (at-least-once is the floor), so the
  handler's own side effects must tolerate that.
* **Stop.** ``stop()`` or the first SIGINT/SIGTERM stops claiming; running
  handlers get ``shutdown_timeout`` seconds; what is still held is then
  released at the head of its queue, so nothing waits for lease expiry. A
  second signal exits at once (held leases then expire normally).

Async handlers run as tasks on the worker's event loop; sync handlers run in
threads; ``concurrency`` bounds both.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from typing import Any

from leaseq._async.queue import AsyncQueue
from leaseq._async.worker import AsyncEngine
from leaseq._core.retry import Backoff, CircuitBreaker, RateLimiter, Reject, Retry, RetryLater
from leaseq._sync.queue import Queue
from leaseq._sync.worker import Engine
from leaseq._worker import WorkerStats, config, log

__all__ = [
    "Backoff",
    "CircuitBreaker",
    "RateLimiter",
    "Reject",
    "Retry",
    "RetryLater",
    "Worker",
    "WorkerStats",
]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Worker:
    """Runs ``handler`` for every message of ``queue`` (a ``Queue`` or ``AsyncQueue``).

    ``handler(value)`` (or ``handler(lease)`` with ``pass_lease=True``), sync or
    async. Its return value acks the message (and is the key's result when
    ``idempotent=True``); ``raise leaseq.Reject(reason)`` dead-letters at once;
    ``raise leaseq.RetryLater(delay)`` hands it back for a new attempt after
    ``delay``; any other exception is retried per ``retry`` (only types in
    ``retry.retry_on``) and dead-lettered when attempts run out, with the error
    recorded as type, message and the last traceback frames.
    """

    def __init__(
        self,
        queue: Queue | AsyncQueue,
        handler: Callable[..., Any],
        *,
        concurrency: int = 1,
        retry: Retry | None = None,
        lease_timeout: float | None = None,
        heartbeat: bool = True,
        min_interval: float = 0.0,
        rate_limit: Any = None,
        circuit_breaker: CircuitBreaker | None = None,
        on_failure: str = "dead_letter",
        idempotent: bool = False,
        owner: str | None = None,
        pass_lease: bool = False,
        shutdown_timeout: float = 30.0,
        poll_interval: float = 0.5,
    ) -> None:
        if not isinstance(queue, (Queue, AsyncQueue)):
            raise TypeError(f"queue must be a leaseq.Queue or AsyncQueue, not {queue!r}")
        self.queue = queue
        self.config = config(
            handler,
            queue_lease_timeout=queue.lease_timeout,
            concurrency=concurrency,
            retry=retry,
            lease_timeout=lease_timeout,
            heartbeat=heartbeat,
            min_interval=min_interval,
            rate_limit=rate_limit,
            circuit_breaker=circuit_breaker,
            on_failure=on_failure,
            idempotent=idempotent,
            owner=owner,
            pass_lease=pass_lease,
            shutdown_timeout=shutdown_timeout,
            poll_interval=poll_interval,
        )
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._running = False

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called (or a signal arrived)."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop claiming; running handlers finish (see ``shutdown_timeout``). Thread-safe."""
        self._stop.set()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The decorated function stays callable as itself (``@q.worker()``)."""
        return self.config.handler(*args, **kwargs)

    def _begin(self) -> None:
        if self._running:
            raise RuntimeError("this worker is already running; create another Worker")
        self._running = True
        self._stop.clear()

    def run(self, *, handle_signals: bool = True) -> WorkerStats:
        """Run until ``stop()`` or SIGINT/SIGTERM (signals are handled only on the
        main thread); return the counters."""
        self._begin()
        restore = self._install_signals() if handle_signals else {}
        try:
            if isinstance(self.queue, AsyncQueue):
                asyncio.run(self._run_on_own_loop(self.queue))
            else:
                Engine(self.queue, self.config, self.stats, self._stop).run()
        finally:
            for sig, old in restore.items():
                signal.signal(sig, old)
            self._running = False
        return self.stats

    async def run_async(self, *, handle_signals: bool = True) -> WorkerStats:
        """Run on the current event loop until ``stop()`` or SIGINT/SIGTERM."""
        self._begin()
        loop = asyncio.get_running_loop()
        installed = self._install_loop_signals(loop) if handle_signals else []
        try:
            if isinstance(self.queue, AsyncQueue):
                await self._run_engine_async(self.queue)
            else:
                # A sync queue's engine uses threads; keep the loop free while it runs.
                engine = Engine(self.queue, self.config, self.stats, self._stop)
                await asyncio.to_thread(engine.run)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            self._running = False
        return self.stats

    async def _run_engine_async(self, queue: AsyncQueue) -> None:
        await AsyncEngine(queue, self.config, self.stats, self._stop).run()

    async def _run_on_own_loop(self, queue: AsyncQueue) -> None:
        try:
            await self._run_engine_async(queue)
        finally:
            # This loop ends with run(): let native clients close what lives on it.
            await queue._end_of_loop()

    # -- signals -------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any = None) -> None:
        if self._stop.is_set():
            # Second signal: exit now (what is held expires and is redelivered).
            raise KeyboardInterrupt
        log.warning(
            "worker on queue %r: %s received; finishing running jobs (signal again to exit now)",
            self.queue.name,
            signal.Signals(signum).name,
        )
        self.stop()

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}

    def _install_loop_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        if threading.current_thread() is not threading.main_thread():
            return []
        installed: list[int] = []
        for sig in _SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_loop_signal, sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix loops
                continue
            installed.append(sig)
        return installed

    def _on_loop_signal(self, signum: int) -> None:
        if self._stop.is_set():
            for task in asyncio.all_tasks():
                task.cancel()
            return
        self._on_signal(signum)

    def __repr__(self) -> str:
        return f"Worker(queue={self.queue.name!r}, concurrency={self.config.concurrency})"
