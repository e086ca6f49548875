"""All-or-none batches of the ``file://`` store: ``put_many`` and ``publish``.

A batch runs with the thread lock and the flock of every target queue held
(taken in name order, so two batches never deadlock), in five steps:

1. **plan**: every put is decided against the current state; ``KeyExists``,
   ``KeyInFlight`` and ``Full`` are raised here, before anything is written;
2. **stage**: each new message's record is written into its queue's ``tmp/``
   as ``NAME~JID`` (invisible to claims); each change of an existing message
   (an update, a buffered follow-up) is staged as ``tmp/ID.e~JID`` holding the
   request;
3. **commit**: the journal ``<root>/journal/JID`` lists the steps (written
   under a dot name and renamed; in durable mode the staged files, the
   ``tmp/`` directories and the journal are fsynced first);
4. **apply**: step by step, a new message is renamed from ``tmp/`` into
   ``ready/`` (its key file written first), a change is applied and its staged
   file unlinked; a step whose staged file is gone is done;
5. the journal is unlinked.

Recovery (roll forward): a process killed before the commit leaves only
invisible staged files (removed after an hour, or as garbage). Killed after
it, the batch is completed by whoever next takes a target queue's flock (a
keyed put, a batch, a keyed ack, requeue, purge...), opens the directory in a
new process, or finds a queue empty in a claim (at most once a second): each
finishes the steps of the queues it holds. Until then, a queue the batch had
already reached shows its copies while the others do not yet: the batch is
never lost in part, but its completion can lag a crash.

A batch of one step writes no journal (one rename is atomic already).

Limit: a keyed READY message another process claims between the plan and the
apply (claims take no flock) has the update applied to the held message, as
``if_in_flight="update"`` would, whatever the request's ``if_in_flight``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from leaseq._core import rules
from leaseq._core.ids import new_id
from leaseq._core.model import Message
from leaseq.errors import Full, KeyExists, KeyInFlight
from leaseq.stores.base import PutRequest
from leaseq.stores.file import _format as F
from leaseq.stores.file import _notes as N
from leaseq.stores.file._base import _READY, _enc
from leaseq.stores.file._core import next_seq
from leaseq.stores.file._puts import Puts
from leaseq.stores.file._qdir import QDir

__all__ = ["Batches"]

_MAGIC = b"LQJ1"
_A = rules.PutAction


@dataclass(slots=True)
class _Step:
    """One effect of a batch. ``ready`` is the new message's name (None: a change
    of the existing message ``mid``, staged as a request)."""

    queue: str
    mid: str
    key: str | None
    ready: str | None
    replace: str | None = None
    req: PutRequest | None = None
    payload: bytes = b""
    msg: Message | None = None
    staged: str = ""
    dropped: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"q": self.queue, "m": self.mid, "k": self.key, "r": self.ready,
                "x": self.replace, "s": self.staged}  # fmt: skip


class Batches(Puts):
    """``put_many`` and ``publish``: all or none, across a crash too (see above)."""

    def put_many(
        self, queue: str, reqs: Sequence[PutRequest], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        """Every put or none, even if this process is killed midway (``_journal``)."""
        assert now is not None
        return self._batch([(queue, r) for r in reqs], now, maxsize)

    def publish(
        self, items: Sequence[tuple[str, PutRequest]], *, now: float | None, maxsize: int = 0
    ) -> list[Message]:
        """One put per ``(queue, request)``, across queues, all or none, even if this
        process is killed midway (a journal; see ``_journal``)."""
        assert now is not None
        return self._batch(list(items), now, maxsize)

    # -- the batch ---------------------------------------------------------------------
    def _batch(
        self, items: list[tuple[str, PutRequest]], now: float, maxsize: int
    ) -> list[Message]:
        if not items:
            return []
        payloads = [self.codec.pack(r.value) for _q, r in items]  # TypeError first
        names = sorted({q for q, _r in items})
        qds = {q: self._qd(q) for q in names}
        with contextlib.ExitStack() as stack:
            for q in names:
                stack.enter_context(qds[q].lock)
            for q in names:
                stack.enter_context(qds[q].flocked())
            steps, out = self._plan(qds, items, payloads, now, maxsize)
            live = [s for s in steps if not s.dropped]
            jid = new_id()
            for st in live:
                self._stage(qds[st.queue], st, jid, now)
            journal = self._commit(qds, live, jid, now) if len(live) > 1 else None
            for st in live:
                self._apply(qds[st.queue], st, now)
            if journal is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(journal)
        result = [m if isinstance(m, Message) else self._edit_msg(steps[m]) for m in out]
        for (q, _r), msg in zip(items, result, strict=True):
            self._after_put(q, msg, now)
        return result

    def _plan(
        self,
        qds: dict[str, QDir],
        items: list[tuple[str, PutRequest]],
        payloads: list[bytes],
        now: float,
        maxsize: int,
    ) -> tuple[list[_Step], list[Message | int]]:
        """Decide every put (raising before anything is written). ``out`` holds each
        put's message, or the index of the step whose apply makes it."""
        now_k = _enc(now)
        steps: list[_Step] = []
        out: list[Message | int] = []
        pending: dict[tuple[str, str], int] = {}  # keys this batch inserts
        new: dict[str, int] = {}
        for (q, req), payload in zip(items, payloads, strict=True):
            key = req.key
            if key is not None and (q, key) in pending:
                prev = steps[pending[(q, key)]]
                action = rules.decide_put(_READY, req.if_ready, req.if_in_flight)
                if action is _A.REJECT_READY:
                    raise KeyExists(q, key)
                if action is _A.REPLACE:
                    prev.dropped = True
                    pending[(q, key)] = len(steps)
                    steps.append(_new_step(q, req, payload, now, prev.replace))
                elif action is _A.UPDATE:
                    assert prev.msg is not None
                    prev.payload, prev.msg = payload, prev.msg._replace(value=req.value)
                assert steps[pending[(q, key)]].msg is not None
                out.append(steps[pending[(q, key)]].msg)  # type: ignore[arg-type]
                continue
            e = None if key is None else self._locate_key(qds[q], key, now_k)
            action = rules.decide_put(None if e is None else e.state, req.if_ready,
                                      req.if_in_flight)  # fmt: skip
            if action is _A.REJECT_READY:
                raise KeyExists(q, key or "")
            if action is _A.REJECT_HELD:
                raise KeyInFlight(q, key or "")
            if action is _A.KEEP:
                assert e is not None
                out.append(self._snap(qds[q], e))
                continue
            if action in (_A.INSERT, _A.REPLACE):
                replace = None if e is None else e.mid
                new[q] = new.get(q, 0) + (e is None)
                if key is not None:
                    pending[(q, key)] = len(steps)
                steps.append(_new_step(q, req, payload, now, replace))
                out.append(steps[-1].msg)  # type: ignore[arg-type]
                continue
            assert e is not None and key is not None  # an update or a follow-up
            out.append(len(steps))
            steps.append(_Step(q, e.mid, key, None, req=req, payload=payload))
        if maxsize:
            for q, n in new.items():
                live = self._count_live(qds[q], now_k)
                if live + n > maxsize:
                    raise Full(f"queue {q!r} holds {live} of {maxsize} live messages")
        return steps, out

    def _stage(self, qd: QDir, st: _Step, jid: str, now: float) -> None:
        """Write the step's file into tmp/ (invisible; fsynced in durable mode)."""
        if st.ready is not None:
            st.staged = f"{st.ready}~J{jid}"
            data = F.encode_record(st.mid, st.key, now, st.payload)
        else:
            assert st.req is not None
            r = st.req
            st.staged = f"{st.mid}.e~J{jid}"
            head = json.dumps({"m": st.mid, "k": r.key, "p": r.priority, "d": r.delay,
                               "a": r.at, "ir": r.if_ready, "if": r.if_in_flight,
                               "ma": r.max_attempts})  # fmt: skip
            data = head.encode() + b"\n" + st.payload
        fd = os.open(qd.tmp + st.staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            if qd.durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _commit(self, qds: dict[str, QDir], steps: list[_Step], jid: str, now: float) -> str:
        """Write the journal: from here on, the batch will be completed."""
        jdir = self._core.journal
        if self._core.durable:  # the staged files' names must outlive a power loss
            for q in {s.queue for s in steps}:
                _fsync_path(qds[q].tmp)
        body = json.dumps({"t": now, "s": [s.as_json() for s in steps]}).encode()
        tmp, path = f"{jdir}.{jid}", jdir + jid
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, F.seal(_MAGIC, body))
            if self._core.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        if self._core.durable:
            _fsync_path(jdir)
        return path

    # -- applying a step (the batch itself, or a recovery) ----------------------------------
    def _apply(self, qd: QDir, st: _Step, now: float) -> None:
        if st.ready is not None:
            self._apply_new(qd, st.staged, st.ready, st.key, st.mid, st.replace, now, False)
        else:
            st.msg = self._apply_edit(qd, st.staged, now, st.req)

    def _apply_new(
        self,
        qd: QDir,
        staged: str,
        ready: str,
        key: str | None,
        mid: str,
        replace: str | None,
        now: float,
        check: bool = True,
    ) -> None:
        """Move a staged new message into ready/ (done already when it is gone;
        ``check=False``: the batch itself, which just staged it)."""
        if check and not os.path.exists(qd.tmp + staged):
            return
        if replace is not None:
            old = self._locate_id(qd, replace, _enc(now))
            if old is not None and old.state is _READY:
                with contextlib.suppress(FileNotFoundError):
                    self._unlink_entry(qd, old)
        if key is not None:
            qd.write_new(qd.keys, N.key_file(key), f"{mid}\n{key}".encode())
        qd.move(qd.tmp, staged, qd.ready, ready)
        self._publish(qd, ready, now)

    def _apply_edit(
        self, qd: QDir, staged: str, now: float, req: PutRequest | None
    ) -> Message | None:
        """Apply a staged update/follow-up to the key's message, if it is still the
        one the batch decided on; then drop the staged file."""
        try:
            data = QDir.read(qd.tmp + staged)
        except FileNotFoundError:
            return None
        head, _sep, payload = data.partition(b"\n")
        h = json.loads(head)
        if req is None:  # a recovery: the request comes from the staged file
            req = PutRequest(self.codec.unpack(payload), h["k"], h["p"], h["d"], h["a"],
                             h["ir"], h["if"], h["ma"])  # fmt: skip
        msg = None
        for _attempt in range(3):  # a claim (no flock) may move the file meanwhile
            e = self._locate_key(qd, h["k"], _enc(now))
            if e is None or e.mid != h["m"]:
                break
            try:
                msg = self._put_locked(qd, req, payload, now, 0)
                break
            except KeyInFlight:  # claimed since the plan: apply to the held message
                req = req._replace(if_in_flight="update")
            except FileNotFoundError:
                continue
        os.unlink(qd.tmp + staged)
        return msg

    def _edit_msg(self, st: _Step) -> Message:
        if st.msg is not None:
            return st.msg
        assert st.req is not None  # the message went meanwhile: say what was asked
        r = st.req
        return Message(st.mid, st.key or st.mid, r.value, r.priority, _READY, 0, 0.0, 0.0,
                       None, None, None, (), r.max_attempts)  # fmt: skip

    # -- recovery ---------------------------------------------------------------------
    def _recover(self, qd: QDir) -> None:
        """Finish the steps of ``qd`` that crashed batches left (its flock is held)."""
        try:
            names = os.listdir(qd.journal)
        except FileNotFoundError:
            return
        for jname in names:
            path = qd.journal + jname
            if jname.startswith("."):  # never committed
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path).st_mtime < time.time() - 3600:
                        os.unlink(path)
                continue
            try:
                j = _decode(QDir.read(path))
            except FileNotFoundError:
                continue
            if j is None:  # (a torn journal can only be a committed one after power loss)
                continue
            now, steps = j["t"], j["s"]
            for s in steps:
                if s["q"] != qd.name:
                    continue
                if s["r"] is None:
                    self._apply_edit(qd, s["s"], now, None)
                else:
                    self._apply_new(qd, s["s"], s["r"], s["k"], s["m"], s["x"], now)
            if not any(os.path.exists(self._staged_path(s)) for s in steps):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def _staged_path(self, s: dict[str, Any]) -> str:
        return os.path.join(self._core.root, "q=" + quote(s["q"], safe=""), "tmp", s["s"])

    def _recover_at_open(self) -> None:
        """A new process opened the directory: finish every crashed batch now."""
        for jname in os.listdir(self._core.journal):
            if jname.startswith("."):
                continue
            try:
                j = _decode(QDir.read(self._core.journal + jname))
            except FileNotFoundError:
                continue
            for q in sorted({s["q"] for s in (j or {}).get("s", ())}):
                qd = self._core.qdir(q)
                with qd.lock, qd.flocked():  # taking the flock applies the steps
                    pass


def _new_step(q: str, req: PutRequest, payload: bytes, now: float, replace: str | None) -> _Step:
    mid = new_id()
    key = req.key
    avail = now if req.at is None and not req.delay else rules.available_at(now, req.delay, req.at)
    ready = F.ready_name(req.priority, False, _enc(avail), next_seq(), 0, req.max_attempts,
                         "-" if key is None else "k", mid)  # fmt: skip
    msg = Message(mid, mid if key is None else key, req.value, req.priority, _READY, 0, now,
                  avail, None, None, None, (), req.max_attempts)  # fmt: skip
    return _Step(q, mid, key, ready, replace, req, payload, msg)


def _decode(data: bytes) -> dict[str, Any] | None:
    body = F.unseal(_MAGIC, data)
    if body is None:
        return None
    j: dict[str, Any] = json.loads(body)
    return j


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
