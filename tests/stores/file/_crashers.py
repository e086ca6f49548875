"""Processes that SIGKILL themselves at a dangerous point of a ``file://`` operation:
``python -m tests.stores.file._crashers OP ROOT POINT``.

The point is reached by wrapping one internal step of the store in this child
process only (the code under test is the real one; the wrapper only decides
when the process dies). Before dying the child writes ``ready`` lines to
stdout so the parent knows the setup part is done.

* ``ack ROOT POINT``: put key ``k`` into queue ``q``, claim it, ack it with an
  outcome; die ``before-outcome`` (the outcome file written in tmp/, not yet
  renamed into results/), ``after-outcome`` (recorded, message not yet
  removed) or ``after-remove`` (both done, before the ack returns).
* ``dead ROOT POINT``: the same with ``dead_letter`` (``before-outcome``,
  ``after-outcome``).
* ``publish ROOT POINT``: publish ``v`` to queues ``a``, ``b`` and ``c``; die
  ``staged`` (files staged, no journal), ``committed`` (journal written, none
  applied), ``applied-1`` / ``applied-2`` (after the first / second step),
  ``applied-all`` (every step applied, journal not yet removed).
* ``put_many ROOT POINT``: ``put_many`` of three values (one keyed, updating an
  existing key) into ``q``; same points as ``publish``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from leaseq._core.model import Outcome
from leaseq.stores.base import PutRequest
from leaseq.stores.file import open_file
from leaseq.stores.file._journal import Batches
from leaseq.stores.file._qdir import QDir


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def patch_outcome(point: str) -> None:
    write_new, discard = QDir.write_new, QDir.discard

    def fake_write_new(self: QDir, dirpath: str, name: str, data: bytes) -> None:
        if dirpath == self.results and point == "before-outcome":
            fd = os.open(self.tmp + name + "~x", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, data[: len(data) // 2])  # half written, never renamed
            die()
        write_new(self, dirpath, name, data)
        if dirpath == self.results and point == "after-outcome":
            die()

    def fake_discard(self: QDir, name: str) -> None:
        discard(self, name)
        if point == "after-remove":
            die()

    QDir.write_new = fake_write_new  # type: ignore[method-assign]
    QDir.discard = fake_discard  # type: ignore[method-assign]


def patch_batch(point: str) -> None:
    commit, apply = Batches._commit, Batches._apply
    applied = [0]
    steps = [0]

    def fake_commit(self: Any, qds: Any, live: Any, jid: str, now: float) -> str:
        steps[0] = len(live)
        if point == "staged":
            die()
        path = commit(self, qds, live, jid, now)
        if point == "committed":
            die()
        return path

    def fake_apply(self: Any, qd: Any, st: Any, now: float) -> None:
        apply(self, qd, st, now)
        applied[0] += 1
        if point == f"applied-{applied[0]}" or (point == "applied-all" and applied[0] == steps[0]):
            die()

    Batches._commit = fake_commit  # type: ignore[method-assign]
    Batches._apply = fake_apply  # type: ignore[method-assign]


def main(op: str, root: str, point: str) -> None:
    store = open_file(urlsplit(f"file://{root}"))
    now = time.time()
    if op in ("ack", "dead"):
        store.put("q", PutRequest("job", "k"), now=now)
        [lease] = store.claim("q", now=now, lease_timeout=30, owner="w")
        print("ready", flush=True)
        patch_outcome(point)
        outcome = Outcome("k", "succeeded" if op == "ack" else "failed", {"n": 1}, None, now)
        if op == "ack":
            store.ack("q", lease, now=now, outcome=outcome)
        else:
            store.dead_letter("q", lease, now=now, error="boom", outcome=outcome)
    elif op == "publish":
        print("ready", flush=True)
        patch_batch(point)
        store.publish([(name, PutRequest("v", "k")) for name in "abc"], now=now)
    elif op == "put_many":
        store.put("q", PutRequest("old", "k"), now=now)
        print("ready", flush=True)
        patch_batch(point)
        reqs = [PutRequest("x"), PutRequest("new", "k"), PutRequest("y")]
        store.put_many("q", reqs, now=now)
    else:
        raise SystemExit(f"unknown op {op!r}")
    print("finished", flush=True)  # the kill point was never reached: a test bug


if __name__ == "__main__":
    main(*sys.argv[1:4])
