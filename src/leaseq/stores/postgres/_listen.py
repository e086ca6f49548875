"""Cross-process wake-ups for ``postgresql://``: LISTEN on a dedicated connection.

While a queue object of this process waits, one daemon thread holds its own
connection (not from the pool) LISTENing on the store's channel. Primitives
of other processes NOTIFY ``queue\\norigin`` when they make something
claimable or schedule it; the thread turns that into ``notifier.changed``.
Notifications are a hint, never the truth: after every (re)connect and after
each quiet, jittered interval (``poll`` seconds on average) it wakes waiters
anyway, so a lost notification or a dead LISTEN connection costs latency,
never a message. The thread and its connection start with the first waiter and
stay (idle, no polling) until the store closes.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Listener"]


class Listener:
    """A LISTEN thread that reconnects; ``on_change(queue or None)`` on news."""

    def __init__(
        self,
        connect: Callable[[], Any],
        channel: str,
        origin: str,
        on_change: Callable[[str | None], None],
        poll: float,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._origin = origin
        self._on_change = on_change
        self._poll = poll
        self._lock = threading.Lock()
        self._active = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        #: Connections made (tests watch reconnects).
        self.connects = 0

    def set_active(self, active: bool) -> None:
        """Start listening (the thread starts on first use) or stop (the connection closes)."""
        if self._stopped:
            return
        if not active:
            self._active.clear()
            return
        with self._lock:
            self._active.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="leaseq-pg-listen", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        pause = 0.05
        while not self._stopped:
            if not self._active.is_set():
                # The connection stays open between waits: no reconnect (and no
                # missed-news wake-up) every time somebody starts waiting.
                self._active.wait()
                continue
            try:
                self._listen()
                pause = 0.05
            except Exception:  # any failure: reconnect (waiters still poll meanwhile)
                self._drop()
                self.connects = max(self.connects, 1)  # the next connect is a reconnect
                # Waiters recheck now: whatever we missed while disconnected.
                self._on_change(None)
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 2.0)
        self._drop()

    def _listen(self) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = self._connect()
            self.connects += 1
            conn.execute(f'LISTEN "{self._channel}"')
            if self.connects > 1:  # a reconnect: news sent meanwhile was not delivered
                self._on_change(None)
        while self._active.is_set() and not self._stopped:
            heard = False
            timeout = self._poll * (0.5 + random.random())
            for note in conn.notifies(timeout=timeout):
                queue, _, origin = note.payload.partition("\n")
                if origin != self._origin:  # our own writes already woke our waiters
                    heard = True
                    self._on_change(queue)
            if not heard:
                self._on_change(None)  # the fallback poll
            if conn.closed or conn.broken:
                raise ConnectionError("LISTEN connection lost")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @property
    def connection(self) -> Any:
        """The current LISTEN connection (for fault tests), or None."""
        return self._conn

    def stop(self) -> None:
        """Stop the thread (it exits within one poll interval) and close its
        connection. Idempotent."""
        self._stopped = True
        self._active.set()
