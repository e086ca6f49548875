"""Cross-process wake-ups: one subscriber connection per store, only while waiting.

Every script that makes something claimable (or frees room) ``PUBLISH`` es
``<origin> <queue base key>`` on ``<prefix>wake``. While a queue object of this
store waits, a daemon thread subscribes and turns each message from another
store object into ``notifier.changed(queue)``. The subscription lingers a few
seconds after the last waiter leaves, so a consumer that waits again soon finds
it live instead of paying a new connection and handshake.

Losing a hint costs latency, never a message: the thread PINGs over the
subscription every second (jittered) and reconnects when no PONG came back;
every (re)subscription is followed by ``changed(None)`` (a recheck of every
waiter, for what was published while nobody listened); and a jittered
fallback poll runs ``changed(None)`` every ~``interval`` seconds for what no
hint announces (a lease shortened by ``renew`` in another process). The poll
is slow on purpose: it wakes every waiter of the store.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from leaseq.stores.redis._ops import queue_of_base

__all__ = ["Subscriber"]

PING_EVERY = 1.0  # seconds between liveness checks of the subscription
START_WAIT = 1.0  # seconds the first waiter waits for the subscription
# Seconds the subscription outlives the last waiter. A consumer that blocks, gets
# one message and blocks again would otherwise pay a new thread, connection and
# SUBSCRIBE handshake per message (and its get would wait for them).
LINGER = 5.0


class Subscriber:
    """Runs the subscriber thread while ``set_active(True)``; thread-safe."""

    def __init__(
        self,
        make_client: Callable[[], Any],
        *,
        prefix: str,
        origin: str,
        changed: Callable[[str | None], None],
        interval: float = 5.0,
    ) -> None:
        self._make_client = make_client
        self.prefix = prefix
        self.channel = f"{prefix}wake"
        self.origin = origin
        self._origin_b = origin.encode()
        self._changed = changed
        self._interval = interval
        self._lock = threading.Lock()
        self._want = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()  # for tests: the subscription is live

    def set_active(self, active: bool) -> None:
        """Start (or stop) listening. Starting waits up to a second for the
        subscription to be live, so the first waiter's first check already
        happens under it (and the catch-up recheck runs before waiters pile up)."""
        started = False
        with self._lock:
            self._want = active and not self._closed
            # A forked child inherits the Thread object but not the thread.
            if self._want and (self._thread is None or not self._thread.is_alive()):
                self.subscribed.clear()
                self._thread = threading.Thread(
                    target=self._run, name="leaseq-redis-watch", daemon=True
                )
                self._thread.start()
                started = True
        if started:
            self.subscribed.wait(START_WAIT)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._want = False
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _still_wanted(self) -> bool:
        with self._lock:
            if self._want:
                return True
            self._thread = None  # decided under the lock: set_active starts a new one
            return False

    def _run(self) -> None:
        backoff = 0.05
        client = None
        while self._still_wanted():
            try:
                if client is None:
                    client = self._make_client()
                self._listen(client)
                backoff = 0.05
            except Exception:  # any failure: reconnect; waiters keep their deadlines
                self.subscribed.clear()
                self._changed(None)
                time.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 1.0)
        if client is not None:
            client.close()

    def _listen(self, client: Any) -> None:
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            deadline = time.monotonic() + 5.0
            while True:  # live once the server confirmed it: later PUBLISHes reach us
                msg = pubsub.get_message(timeout=0.2)
                if msg is not None and msg.get("type") == "subscribe":
                    break
                if time.monotonic() > deadline:
                    raise ConnectionError("no confirmation of SUBSCRIBE")
            self.subscribed.set()
            self._changed(None)  # whatever happened while we were not subscribed
            now = time.monotonic()
            next_poll = now + self._jitter(self._interval)
            next_ping = now + self._jitter(PING_EVERY)
            awaiting_pong = False
            unwanted_since: float | None = None
            while True:
                with self._lock:
                    if self._closed:
                        return
                    want = self._want
                if want:
                    unwanted_since = None
                elif unwanted_since is None:
                    unwanted_since = time.monotonic()
                elif time.monotonic() - unwanted_since >= LINGER:
                    return  # _run decides under the lock whether to stop
                msg = pubsub.get_message(timeout=0.2)
                if msg is not None:
                    kind = msg.get("type")
                    if kind == "message":
                        self._deliver(msg["data"])
                    elif kind == "pong":
                        awaiting_pong = False
                now = time.monotonic()
                if now >= next_ping:
                    if awaiting_pong:  # a silent connection: it may have lost hints
                        raise ConnectionError("no PONG on the subscription")
                    pubsub.ping()
                    awaiting_pong = True
                    next_ping = now + self._jitter(PING_EVERY)
                if now >= next_poll:
                    self._changed(None)  # the fallback poll
                    next_poll = now + self._jitter(self._interval)
        finally:
            self.subscribed.clear()
            pubsub.close()

    @staticmethod
    def _jitter(seconds: float) -> float:
        return seconds * random.uniform(0.75, 1.25)

    def _deliver(self, data: bytes) -> None:
        origin, _, base = data.partition(b" ")
        if origin == self._origin_b:
            return  # this store object already woke its own waiters
        queue = queue_of_base(self.prefix, base.decode())
        if queue is not None:
            self._changed(queue)
