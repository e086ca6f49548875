"""``Engine``: the thread-based worker loop. GENERATED from ``leaseq/_async/worker.py``
by ``scripts/unasync.py`` — do not edit; edit the async source and run
``make generate``."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from leaseq._core.model import Lease, State
from leaseq._core.retry import decide_failure
from leaseq._sync.queue import Queue
from leaseq._worker import (
    DEAD_LETTERED,
    FAILED,
    LOST,
    RETRIED,
    SKIPPED,
    SUCCEEDED,
    Config,
    Held,
    WorkerStats,
    log,
)
from leaseq.errors import Closed, Empty, LeaseLost, StoreError

__all__ = ["Engine"]

_DEAD = "dead_letter"
_NAP = 0.1  # longest pause between rechecks of a paced or failing slot
_PRUNE_EVERY = 300.0  # seconds between sweeps of expired outcomes (idempotent workers)


class Engine:
    """Runs ``Config.concurrency`` slots over one queue until ``stop`` is set."""

    def __init__(
        self, queue: Queue, cfg: Config, stats: WorkerStats, stop: threading.Event
    ) -> None:
        self._q = queue
        self._cfg = cfg
        self._stats = stats
        self._stop = stop
        self._clock = queue.clock
        self._held: dict[str, Held] = {}
        stats.watch(self._held)
        self._pace_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._keyless_warned = False
        # Shared claims (``_next``). Pacing decides each start on its own, and one slot
        # has no one to share with: those claim one message per job.
        self._share = cfg.concurrency > 1 and cfg.limiter is None and cfg.breaker is None
        # Leases claimed for idle slots, not yet taken; how many slots wait for one;
        # whether a slot is claiming now. Guarded by _work.
        self._buffer: deque[Held] = deque()
        self._idle = 0
        self._claiming = False
        self._work = threading.Condition()

    # -- the slot loop -------------------------------------------------------------
    def _slot(self) -> None:
        cfg = self._cfg
        q = self._q
        paced = cfg.limiter is not None or cfg.breaker is not None
        share = self._share
        row = self._stats.row()
        # The queue's own lease_timeout needs no re-validation on every claim.
        lt = None if cfg.lease_timeout == q.lease_timeout else cfg.lease_timeout
        stop = self._stop
        while not stop.is_set():
            if paced and not self._gate():
                continue
            try:
                if share:
                    held = self._next(lt)
                    if held is None:
                        continue
                else:
                    lease = q.get(timeout=cfg.poll_interval, lease_timeout=lt, owner=cfg.owner)
                    held = self._hold(lease)
            except Empty:
                if cfg.breaker is not None:
                    with self._pace_lock:
                        cfg.breaker.no_probe()
                continue
            except Closed:
                return
            except StoreError as exc:
                # The engine is down or locked past its budget: nothing is held, so
                # nothing is lost; try again shortly instead of dying.
                log.warning("queue %r: claim failed (%s); retrying", q.name, exc)
                self._sleep(_NAP * 10)
                continue
            self._process(held, row)
        if share:
            self._return_buffer()

    def _next(self, lt: float | None) -> Held | None:
        """This idle slot's next lease (registered in ``_held``), or None: nothing
        came within ``poll_interval``, or ``stop`` is set.

        A lease claimed for another slot is taken from ``_buffer``. Else one slot
        at a time claims, for itself and every slot waiting now (so no lease waits
        behind a running handler), keeps the first and hands the rest over. Every
        claimed lease is in ``_held`` from the claim on: the heartbeat extends it
        and shutdown releases it even before a slot takes it.
        """
        stop = self._stop
        buffer = self._buffer
        work = self._work
        with work:
            while True:
                if stop.is_set():
                    return None
                if buffer:
                    held = buffer.popleft()
                    if not held.lost:
                        return held
                    # Lost before it started (the heartbeat could not extend it, or
                    # shutdown released it): never run it.
                    held.finished = True
                    self._held.pop(held.lease.token, None)
                    continue
                if not self._claiming:
                    break
                self._idle += 1
                try:
                    work.wait(_NAP)  # a hand-over, a finished claim, or a recheck
                finally:
                    self._idle -= 1
            self._claiming = True
            n = self._idle + 1
        cfg = self._cfg
        leases: list[Lease] = []
        try:
            if n == 1:  # alone: the plain claim (and its fast paths)
                leases = [self._q.get(timeout=cfg.poll_interval, lease_timeout=lt, owner=cfg.owner)]
            else:
                leases = self._q.get_many(
                    n, timeout=cfg.poll_interval, lease_timeout=lt, owner=cfg.owner
                )
        except Empty:
            pass
        finally:
            with work:
                self._claiming = False
                mine: Held | None = None
                for lease in leases:
                    held = self._hold(lease)
                    if mine is None:
                        mine = held
                    else:
                        buffer.append(held)
                if self._idle:
                    # One slot per handed-over lease, and one more to claim next for
                    # the slots still idle (or that came while this claim ran).
                    work.notify(len(leases) or 1)
        if len(leases) > 1 and stop.is_set():
            self._return_buffer()  # the slots that would take them are leaving
        return mine

    def _return_buffer(self) -> None:
        """``stop`` is set: release, at the head of their queue, the leases claimed for
        slots that will not take them, so none waits for its lease to expire."""
        with self._work:
            unused = list(self._buffer)
            self._buffer.clear()
        for held in unused:
            self._held.pop(held.lease.token, None)
            if held.lost:
                continue  # the heartbeat could not keep it: it is not ours to release
            held.finished = True  # no slot, heartbeat or hand-back touches it
            self._give_back(held, "unstarted key")

    def _gate(self) -> bool:
        """True when a claim may go ahead now; else pause a little and return False."""
        cfg = self._cfg
        with self._pace_lock:
            now = self._clock()
            wait = 0.0 if cfg.limiter is None else cfg.limiter.wait(now)
            if not wait and cfg.breaker is not None:
                wait = cfg.breaker.wait(now)
        if not wait:
            return True
        self._sleep(min(wait, _NAP))
        return False

    def _process(self, held: Held, row: list[int]) -> None:
        """Run and settle one lease; the caller registered ``held`` in ``_held``."""
        cfg = self._cfg
        lease = held.lease
        try:
            limit = self._attempt_limit(lease)
            if limit is not None and lease.attempt > limit and cfg.on_failure == _DEAD:
                # Earlier attempts were lost (a crash, an expiry) after the last one allowed.
                self._dead(held, f"max_attempts: claim {lease.attempt} of {limit} allowed", row)
                return
            if cfg.idempotent and self._already_done(held, row):
                return
            try:
                result = self._call(lease if cfg.pass_lease else lease.value)
            except Exception as exc:
                self._failed(held, exc, limit, row)
            else:
                self._succeeded(held, result, row)
        finally:
            held.finished = True
            del self._held[lease.token]

    def _attempt_limit(self, lease: Lease) -> int | None:
        mine = self._cfg.retry.max_attempts
        theirs = lease.message.max_attempts
        if mine is None or theirs is None:
            return theirs if mine is None else mine
        return min(mine, theirs)

    # -- settling ------------------------------------------------------------------
    def _already_done(self, held: Held, row: list[int]) -> bool:
        """Idempotent workers: a key whose success is in the ledger is acked unrun."""
        lease = held.lease
        if lease.key == lease.message.id and not self._keyless_warned:
            self._keyless_warned = True
            log.warning(
                "queue %r: idempotent worker got a message without a key; its id stands in, "
                "so duplicates of it cannot be recognised — put messages with key=",
                self._q.name,
            )
        done = self._q.outcome(lease.key)
        if done is None or not done.succeeded:
            return False
        try:
            self._q.ack(lease)
        except LeaseLost as exc:
            self._lost(held, exc, row)
            return True
        row[SKIPPED] += 1
        return True

    def _succeeded(self, held: Held, result: Any, row: list[int]) -> None:
        if held.lost:
            self._lost(held, None, row)
            return
        try:
            if self._cfg.idempotent:
                self._q.ack(held.lease, result=result)
            else:
                self._q.ack(held.lease)
        except LeaseLost as exc:
            self._lost(held, exc, row)
            return
        except TypeError as exc:
            # The ledger cannot hold the result: record that, never lose the message.
            self._dead(held, f"result not storable: {exc}", row)
            return
        row[SUCCEEDED] += 1
        if self._cfg.breaker is not None:
            with self._pace_lock:
                self._cfg.breaker.success()

    def _failed(self, held: Held, exc: Exception, limit: int | None, row: list[int]) -> None:
        cfg = self._cfg
        lease = held.lease
        row[FAILED] += 1
        if cfg.breaker is not None:
            with self._pace_lock:
                cfg.breaker.failure(self._clock())
        d = decide_failure(
            exc,
            attempt=lease.attempt,
            max_attempts=limit,
            retry=cfg.retry,
            on_failure=cfg.on_failure,
        )
        if held.lost:
            self._lost(held, None, row)
            return
        if d.action == "dead":
            self._dead(held, d.error, row)
            return
        try:
            msg = self._q.release(lease, delay=d.delay, error=d.error)
        except LeaseLost as lost:
            self._lost(held, lost, row)
            return
        if msg.state is State.DEAD:
            row[DEAD_LETTERED] += 1
            log.error(
                "queue %r: key %r died after %d attempts", self._q.name, msg.key, lease.attempt
            )
        else:
            row[RETRIED] += 1
            log.info(
                "queue %r: key %r attempt %d failed; retry in %.3gs",
                self._q.name,
                lease.key,
                lease.attempt,
                d.delay,
            )

    def _dead(self, held: Held, error: str, row: list[int]) -> None:
        try:
            self._q.dead_letter(held.lease, error=error, record=self._cfg.idempotent)
        except LeaseLost as exc:
            self._lost(held, exc, row)
            return
        row[DEAD_LETTERED] += 1
        log.error("queue %r: key %r dead-lettered: %s", self._q.name, held.lease.key, error)

    def _lost(self, held: Held, exc: LeaseLost | None, row: list[int]) -> None:
        row[LOST] += 1
        log.warning(
            "queue %r: lease on key %r was lost (%s); its outcome is dropped and the "
            "message may run again — raise lease_timeout or keep heartbeat=True",
            self._q.name,
            held.lease.key,
            "heartbeat could not extend it" if exc is None else exc.reason,
        )

    # -- heartbeat -----------------------------------------------------------------
    def _beat(self) -> None:
        """Extend every held lease that has used a third of its time."""
        lt = self._cfg.lease_timeout
        now = self._clock()
        for held in list(self._held.values()):
            if held.lost or held.finished or held.lease.expires_at - now > lt * 2 / 3:
                continue
            try:
                held.lease = self._q.extend(held.lease, lt)
            except LeaseLost as exc:
                if not held.finished:
                    held.lost = True
                    log.warning(
                        "queue %r: heartbeat lost key %r: %s", self._q.name, held.lease.key, exc
                    )
            except (StoreError, Closed) as exc:
                log.warning("queue %r: heartbeat failed (%s); will retry", self._q.name, exc)

    def _prune(self) -> None:
        with contextlib.suppress(StoreError, Closed):
            self._q.prune_results()

    def _hand_back(self) -> None:
        """At shutdown: release what handlers still hold, so nothing waits for expiry."""
        self._return_buffer()
        for held in list(self._held.values()):
            if held.finished or held.lost:
                continue
            self._give_back(held, "key")

    def _give_back(self, held: Held, what: str) -> None:
        """Release ``held`` to the head of its queue at shutdown (nothing waits for its
        expiry); it is marked lost first, so a late result of its handler is not acked."""
        held.lost = True
        with contextlib.suppress(LeaseLost, StoreError, Closed):
            self._q.release(held.lease, front=True, error="worker shut down")
            log.info("queue %r: handed back %s %r at shutdown", self._q.name, what, held.lease.key)

    def _hold(self, lease: Lease) -> Held:
        """Register a claimed lease: from now on the heartbeat extends it and shutdown
        hands it back."""
        held = self._held[lease.token] = Held(lease)
        return held

    def _call(self, arg: Any) -> Any:
        handler = self._cfg.handler
        if self._cfg.is_async:
            return self._runner().run(handler(arg))
        return handler(arg)

    def _runner(self) -> asyncio.Runner:
        # An async handler on a thread-based worker: one event loop per slot thread.
        runner: asyncio.Runner | None = getattr(self._local, "runner", None)
        if runner is None:
            runner = self._local.runner = asyncio.Runner()
        return runner

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _heartbeat(self, finished: threading.Event) -> None:
        interval = self._cfg.lease_timeout / 3
        last_prune = time.monotonic()
        while not finished.wait(interval):
            if self._cfg.heartbeat:
                self._beat()
            if self._cfg.idempotent and time.monotonic() - last_prune > _PRUNE_EVERY:
                last_prune = time.monotonic()
                self._prune()

    def _slot_thread(self, failures: list[BaseException]) -> None:
        try:
            self._slot()
        except BaseException as exc:
            failures.append(exc)
            self._stop.set()
        finally:
            runner = getattr(self._local, "runner", None)
            if runner is not None:
                runner.close()

    def run(self) -> None:
        """Run the slots until ``stop`` is set, then wait up to ``shutdown_timeout``
        for running handlers and hand back what is still held."""
        self._local = threading.local()
        failures: list[BaseException] = []
        slots = [
            threading.Thread(
                target=self._slot_thread, args=(failures,), name=f"leaseq-worker-{i}", daemon=True
            )
            for i in range(self._cfg.concurrency)
        ]
        finished = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(finished,), name="leaseq-heartbeat", daemon=True
        )
        for thread in slots:
            thread.start()
        beat.start()
        try:
            self._join(slots)
        finally:
            finished.set()
            self._hand_back()
        if failures:
            raise failures[0]

    def _join(self, slots: list[threading.Thread]) -> None:
        stopped_at = None
        while any(t.is_alive() for t in slots):
            for thread in slots:
                thread.join(_NAP / len(slots))
            if self._stop.is_set():
                if stopped_at is None:
                    stopped_at = time.monotonic()
                elif time.monotonic() - stopped_at >= self._cfg.shutdown_timeout:
                    return
