"""What the handles of one directory share in one process: queue views, the
notifier, the cross-process change watcher, and the operation sequence."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from urllib.parse import quote, unquote

from leaseq._core.ids import new_token
from leaseq._waiting import Notifier
from leaseq.stores.file._qdir import QDir

__all__ = ["POLL_INTERVAL", "Core", "get_core", "next_seq"]

#: How often the change watcher looks for other processes' writes while someone
#: waits: the bound on cross-process wake-up latency (seconds).
POLL_INTERVAL = 0.02

_seq_last = 0


def next_seq() -> int:
    """A strictly increasing operation sequence: equal times keep operation order.
    Based on the host-wide monotonic clock, so processes on one host agree too."""
    global _seq_last
    # No lock: callers hold their queue's lock, and names stay unique through their
    # ids; a race between two queues could only reorder two equal times of them.
    s = time.monotonic_ns()
    if s <= _seq_last:
        s = _seq_last + 1
    _seq_last = s
    return s


_cores: dict[tuple[str, bool], Core] = {}
_cores_lock = threading.Lock()


def get_core(root: str, durable: bool) -> Core:
    """The shared state of ``root`` in this process (one per durability setting)."""
    real = os.path.realpath(root)
    with _cores_lock:
        core = _cores.get((real, durable))
        if core is None:
            core = _cores[(real, durable)] = Core(real, durable)
        core.refs += 1
        return core


class Core:
    """Queue views of one directory (created on first use) and their change watcher."""

    def __init__(self, root: str, durable: bool) -> None:
        os.makedirs(root, exist_ok=True)
        self.root = root
        self.durable = durable
        self.refs = 0
        self.wid = new_token()[:8]
        self._lock = threading.Lock()
        self._qdirs: dict[str, QDir] = {}
        self.notifier = Notifier(watch=self._watch)
        self._watch_gen = 0
        self.journal = os.path.join(root, "journal") + "/"
        os.makedirs(self.journal, exist_ok=True)
        #: Finishes crashed publishes of a queue (``_journal.Batches._recover``);
        #: the first store handle opened installs it.
        self.recover: Callable[[QDir], None] | None = None

    def qdir(self, name: str) -> QDir:
        qd = self._qdirs.get(name)
        if qd is None:
            with self._lock:
                qd = self._qdirs.get(name)
                if qd is None:
                    base = os.path.join(self.root, "q=" + quote(name, safe=""))
                    qd = QDir(base, name, self.durable, self.wid)
                    qd.on_flock = self._on_flock
                    self._qdirs[name] = qd
        return qd

    def _on_flock(self, qd: QDir) -> None:
        if self.recover is not None:
            self.recover(qd)

    def queue_names(self) -> list[str]:
        out = []
        for d in sorted(os.listdir(self.root)):
            if not d.startswith("q="):
                continue
            base = os.path.join(self.root, d)
            if any(_nonempty(os.path.join(base, sub)) for sub in ("ready", "leased", "dead")):
                out.append(unquote(d[2:]))
        return out

    def release(self) -> None:
        """One handle closed; the last one closes the files."""
        with _cores_lock:
            self.refs -= 1
            if self.refs > 0:
                return
            _cores.pop((self.root, self.durable), None)
        self._watch_gen += 1
        with self._lock:
            for qd in self._qdirs.values():
                with qd.lock:
                    qd.close()
            self._qdirs.clear()

    # -- the cross-process change watcher --------------------------------------------
    def _watch(self, active: bool) -> None:
        """Run a polling thread only while someone waits (``Notifier`` tells us)."""
        self._watch_gen += 1
        if active:
            gen = self._watch_gen
            threading.Thread(
                target=self._poll, args=(gen,), name="leaseq-file-watch", daemon=True
            ).start()

    def _poll(self, gen: int) -> None:
        """Wake waiters when another process changed a queue: its log grew past what
        this process wrote and read (a put, a release), or ready/ or leased/ changed
        in a way this process did not (a claim, an ack, a dead letter)."""
        for qd in list(self._qdirs.values()):
            qd.seen = qd.dir_times()
        while self._watch_gen == gen:
            time.sleep(POLL_INTERVAL)
            for qd in list(self._qdirs.values()):
                if qd.foreign_change():
                    self.notifier.changed(qd.name)


def _nonempty(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return any(True for _ in it)
    except FileNotFoundError:
        return False


def _after_fork() -> None:
    # A forked child must not inherit locks another thread held, nor share the
    # parent's writer id (its own log entries would be skipped by the parent).
    global _cores_lock
    _cores_lock = threading.Lock()
    for core in _cores.values():
        core.wid = new_token()[:8]
        core._lock = threading.Lock()
        core._watch_gen += 1
        for qd in core._qdirs.values():
            qd.wid = core.wid
            qd.after_fork()


os.register_at_fork(after_in_child=_after_fork)
