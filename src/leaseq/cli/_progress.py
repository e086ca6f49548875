"""The live progress line of long-running commands (exec, worker).

A daemon thread reads the worker's ``stats`` a few times a second. On a
terminal it redraws one line on stderr (``\\r``); otherwise it writes a plain
log line every ``log_every`` seconds, so cron mails and journald stay readable.
It also implements ``--drain``: stop the worker once the queue holds no live
message and nothing is running.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Progress", "counts"]

_FIELDS = ("succeeded", "failed", "retried", "dead_lettered", "running")


def counts(stats: Any) -> dict[str, int]:
    """The worker's counters as a dict (missing ones read 0)."""
    return {f: int(getattr(stats, f, 0) or 0) for f in _FIELDS}


class Progress:
    """Reports a worker's progress from a thread until ``stop()``."""

    def __init__(
        self,
        label: str,
        read: Callable[[], Any],
        *,
        stop_worker: Callable[[], None],
        drained: Callable[[], bool] | None = None,
        log_every: float = 10.0,
        quiet: bool = False,
        out: TextIO | None = None,
    ) -> None:
        self._label = label
        self._read = read
        self._stop_worker = stop_worker
        self._drained = drained
        self._log_every = log_every
        self._out = out or sys.stderr
        self._tty = self._out.isatty()
        self._quiet = quiet
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="leaseq-progress", daemon=True)
        self.started = time.monotonic()

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop reporting (ends the terminal line). Idempotent."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._tty and not self._quiet:
            self._out.write("\n")
            self._out.flush()

    def line(self) -> str:
        c = counts(self._read())
        secs = max(time.monotonic() - self.started, 1e-9)
        return (
            f"{self._label}: {c['succeeded']} done, {c['dead_lettered']} dead, "
            f"{c['failed']} failed attempts, {c['retried']} retried, {c['running']} running, "
            f"{c['succeeded'] / secs:.1f}/s"
        )

    def _loop(self) -> None:
        tick = 0.05 if self._drained is not None else 0.25
        next_log = time.monotonic() + (0.25 if self._tty else self._log_every)
        while not self._done.wait(tick):
            if self._drained is not None and self._drained():
                self._stop_worker()
            now = time.monotonic()
            if self._quiet or now < next_log:
                continue
            if self._tty:
                self._out.write("\r\x1b[K" + self.line())
                next_log = now + 0.25
            else:
                self._out.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + self.line() + "\n")
                next_log = now + self._log_every
            self._out.flush()
