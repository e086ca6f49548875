"""One decision logic for the sync and the async Redis store: script arguments in,
results and wake-ups out.

Each primitive is a method that returns a ``Call``: which script, its keys and
arguments, and ``finish(reply)`` which decodes the reply, raises the contract's
errors and feeds the in-process notifier. The sync store runs a call with
``redis.Redis``, the async primitives with ``redis.asyncio.Redis``; neither
decides anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from leaseq._core import rules
from leaseq._core.model import Event, Lease, Message, Outcome, QueueStats, State
from leaseq._waiting import Notifier
from leaseq.errors import Full, KeyExists, KeyInFlight, MessageNotFound
from leaseq.serializers import Codec
from leaseq.stores.base import PutRequest

__all__ = ["Call", "Ops", "queue_base", "queue_of_base"]

_new = tuple.__new__
_STATES = {b"r": State.READY, b"l": State.LEASED, b"x": State.DEAD}
_STATE_ARG = {State.READY: "ready", State.LEASED: "leased", State.DEAD: "dead"}


class Call(NamedTuple):
    """One script call: ``finish`` turns the raw reply into the primitive's result."""

    script: str
    keys: list[str]
    args: list[Any]
    finish: Callable[[Any], Any]
    write: bool = True


def _escape(queue: str) -> str:
    # A '}' would end the hash tag early: queue names are escaped inside it.
    return queue.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def _unescape(tag: str) -> str:
    return tag.replace("%7D", "}").replace("%7B", "{").replace("%25", "%")


def queue_base(prefix: str, queue: str) -> str:
    """The base key of a queue: every key of it starts so and shares its hash tag."""
    return f"{prefix}{{{_escape(queue)}}}"


def queue_of_base(prefix: str, base: str) -> str | None:
    """Inverse of ``queue_base`` (None for a key of another prefix)."""
    if not base.startswith(prefix + "{") or not base.endswith("}"):
        return None
    return _unescape(base[len(prefix) + 1 : -1])


def _s(b: bytes | None) -> str | None:
    return None if b is None else b.decode()


def _f(b: bytes | None) -> float | None:
    return None if b is None else float(b)


def _now_arg(now: float | None) -> str:
    return "" if now is None else repr(float(now))


def _history(raw: bytes | None) -> tuple[Event, ...]:
    if not raw:
        return ()
    out = []
    for text in raw.decode().split("\x1e"):
        parts = text.split("\x1f")
        detail = parts[2] if len(parts) > 2 else None
        out.append(_new(Event, (float(parts[0]), parts[1], detail)))
    return tuple(out)


def _detail(text: str) -> str:
    # History records are separated by these two characters.
    return text.replace("\x1e", " ").replace("\x1f", " ")


class Ops:
    """Builds calls for one store (its key prefix, codec, notifier and wake-up channel)."""

    def __init__(self, prefix: str, codec: Codec, notifier: Notifier, origin: str) -> None:
        self.prefix = prefix
        self.channel = f"{prefix}wake"
        self.origin = origin
        self._pack = codec.pack
        self._unpack = codec.unpack
        self.notifier = notifier

    def base(self, queue: str) -> str:
        return queue_base(self.prefix, queue)

    def _head(self, now: float | None) -> list[Any]:
        return [_now_arg(now), self.channel, self.origin]

    # -- decoding ------------------------------------------------------------------
    def message(self, r: Sequence[Any]) -> Message:
        ma = r[12]
        return _new(
            Message,
            (
                r[0].decode(),
                r[1].decode(),
                self._unpack(r[2]),
                int(r[3]),
                _STATES[r[4]],
                int(r[5]),
                float(r[6]),
                float(r[7]),
                _f(r[8]),
                _s(r[9]),
                _s(r[10]),
                _history(r[11]),
                None if ma is None else int(ma),
            ),
        )

    def lease(self, r: Sequence[Any]) -> Lease:
        msg = self.message(r)
        assert msg.lease_expires_at is not None
        return _new(
            Lease, (msg.key, msg.value, r[13].decode(), msg.attempts, msg.lease_expires_at, msg)
        )

    def _woken(self, queue: str, raw: Sequence[bytes]) -> None:
        if raw and self.notifier.waiting:
            self.notifier.ready_many(queue, [k.decode() for k in raw])

    def _lost(self, queue: str, lease: Lease, r: Sequence[Any], now: float) -> None:
        found = r[1] == 1
        rules.check_lease(
            queue=queue,
            message_id=lease.message.id,
            attempt=lease.attempt,
            token=lease.token,
            found=found,
            state=_STATES.get(r[2]) if found else None,
            held_token=_s(r[3]) if found else None,
            lease_expires_at=_f(r[4]) if found else None,
            now=now,
        )
        raise AssertionError("check_lease raised")  # pragma: no cover

    # -- puts ----------------------------------------------------------------------
    def put_call(
        self,
        items: Sequence[tuple[str, PutRequest]],
        now: float | None,
        maxsize: int,
        single: bool = False,
    ) -> Call:
        """put, put_many and publish: one script, every request or none."""
        bases: list[str] = []
        index: dict[str, int] = {}
        args: list[Any] = [*self._head(now), len(items)]
        pack = self._pack
        for queue, req in items:
            qi = index.get(queue)
            if qi is None:
                qi = index[queue] = len(bases) + 1
                bases.append(self.base(queue))
            # Encode before anything is written: an unstorable value is a TypeError.
            args += [
                qi,
                maxsize,
                "0" if req.key is None else "1",
                req.key or "",
                pack(req.value),
                req.priority,
                repr(float(req.delay or 0.0)),
                "" if req.at is None else repr(float(req.at)),
                req.if_ready,
                req.if_in_flight,
                "" if req.max_attempts is None else req.max_attempts,
            ]
        names = list(index)

        def finish(reply: Any) -> Any:
            if reply[0] == b"E":
                self._refused(names, reply)
            now_s = float(reply[0])
            out: list[Message] = []
            notes: list[tuple[str, str, float | None]] = []
            for (queue, req), res in zip(items, reply[2], strict=True):
                kind = res[0]
                if kind == b"K":  # an existing message kept or updated: its snapshot
                    msg = self.message(res[1])
                elif kind == b"B":  # buffered: the follow-up as it will be born
                    msg = self._follow_up(queue, res[1].decode(), req, now_s)
                else:  # inserted: built here from the request, the id and the due time
                    msg = self._inserted(res[1].decode(), req, now_s, float(res[2]))
                    if kind == b"R":
                        notes.append((queue, msg.key, None))
                    else:
                        notes.append((queue, msg.key, msg.available_at))
                out.append(msg)
            n = self.notifier
            if n.waiting:
                for queue in names:
                    self._woken(queue, reply[1])
                for queue, key, due in notes:
                    if due is None:
                        n.ready(queue, key)
                    else:
                        n.scheduled(queue, due, key)
            return out[0] if single else out

        return Call("put", bases, args, finish)

    @staticmethod
    def _inserted(mid: str, req: PutRequest, now: float, avail: float) -> Message:
        # The caller's value object, as every store returns it from put.
        key = mid if req.key is None else req.key
        msg = (mid, key, req.value, req.priority, State.READY, 0, now, avail, None, None, None)
        return _new(Message, (*msg, (), req.max_attempts))

    def _follow_up(self, queue: str, fid: str, req: PutRequest, now: float) -> Message:
        key = req.key
        assert key is not None
        return _new(
            Message,
            (
                fid,
                key,
                req.value,
                req.priority,
                State.READY,
                0,
                now,
                now,
                None,
                None,
                None,
                (),
                req.max_attempts,
            ),
        )

    @staticmethod
    def _refused(names: list[str], reply: Any) -> None:
        kind = reply[1]
        queue = names[int(reply[2]) - 1]
        if kind == b"KeyExists":
            raise KeyExists(queue, reply[3].decode())
        if kind == b"KeyInFlight":
            raise KeyInFlight(queue, reply[3].decode())
        raise Full(
            f"queue {queue!r} holds {int(reply[3])} of {int(reply[4])} live messages "
            "(maxsize); ack some, or put with block=True to wait"
        )

    # -- claims --------------------------------------------------------------------
    def claim_call(
        self, queue: str, now: float | None, lease_timeout: float, owner: str | None, limit: int
    ) -> Call:
        args = [*self._head(now), repr(float(lease_timeout)), *self._owner(owner), limit]
        return Call("claim", [self.base(queue)], args, self._claimed(queue, many=True))

    def claim_key_call(
        self, queue: str, key: str, now: float | None, lease_timeout: float, owner: str | None
    ) -> Call:
        args = [*self._head(now), repr(float(lease_timeout)), *self._owner(owner), key]
        return Call("claim_key", [self.base(queue)], args, self._claimed(queue, many=False))

    @staticmethod
    def _owner(owner: str | None) -> list[str]:
        return ["0", ""] if owner is None else ["1", owner]

    def _claimed(self, queue: str, *, many: bool) -> Callable[[Any], Any]:
        def finish(reply: Any) -> Any:
            leases = [self.lease(r) for r in reply[2]]
            n = self.notifier
            if n.waiting:
                self._woken(queue, reply[1])
                for lease in leases:
                    n.scheduled(queue, lease.expires_at, lease.key)
            if many:
                return leases
            return leases[0] if leases else None

        return finish

    # -- lease operations ----------------------------------------------------------
    def _lease_args(self, now: float | None, lease: Lease) -> list[Any]:
        return [*self._head(now), lease.message.id, lease.token]

    def renew_call(self, queue: str, lease: Lease, now: float | None, seconds: float) -> Call:
        args = [*self._lease_args(now, lease), repr(float(seconds))]

        def finish(reply: Any) -> Lease:
            if reply[0] == b"L":
                self._lost(queue, lease, reply, _now_of(reply, now))
            msg = self.message(reply[2])
            exp = msg.lease_expires_at
            assert exp is not None
            if self.notifier.waiting:
                self._woken(queue, reply[1])
                self.notifier.scheduled(queue, exp, lease.key)
            return lease._replace(expires_at=exp, message=msg)

        return Call("renew", [self.base(queue)], args, finish)

    def settle_call(
        self,
        queue: str,
        lease: Lease,
        now: float | None,
        *,
        dead: bool,
        error: str | None = None,
        outcome: Outcome | None = None,
    ) -> Call:
        """ack (``dead=False``) or dead_letter, with an optional outcome."""
        head = self._head(now)
        args = [*head, "dead" if dead else "ack", lease.message.id, lease.token]
        args += ["0", ""] if error is None else ["1", error]
        args += self._outcome_args(outcome)

        def finish(reply: Any) -> Message | None:
            if reply[0] == b"L":
                self._lost(queue, lease, reply, _now_of(reply, now))
            res = reply[2]
            n = self.notifier
            if n.waiting:
                self._woken(queue, reply[1])
                kind = res[0]
                if kind == b"R":
                    n.ready(queue, res[1].decode())
                elif kind == b"D":
                    n.scheduled(queue, float(res[2]), res[1].decode())
                elif kind in (b"XR", b"XD"):
                    n.changed(queue)  # died, and its buffered follow-up took its place
                else:
                    n.space(queue)
                if outcome is not None:
                    n.settled(queue, outcome.key)
            return self.message(res[1]) if dead else None

        return Call("settle", [self.base(queue)], args, finish)

    def _outcome_args(self, outcome: Outcome | None) -> list[Any]:
        if outcome is None:
            return ["0", "", "", ""]
        exp = outcome.expires_at
        return ["1", outcome.key, self.pack_outcome(outcome), "" if exp is None else repr(exp)]

    def pack_outcome(self, o: Outcome) -> bytes:
        head = "\x1f".join(
            [
                o.status,
                "" if o.error is None else "e" + o.error,
                repr(float(o.recorded_at)),
                "" if o.expires_at is None else repr(float(o.expires_at)),
            ]
        ).encode()
        return b"%d\n" % len(head) + head + self._pack(o.value)

    def unpack_outcome(self, key: str, blob: bytes) -> Outcome:
        size, _, rest = blob.partition(b"\n")
        head, body = rest[: int(size)].decode(), rest[int(size) :]
        status, error, recorded, expires = head.split("\x1f", 3)
        return Outcome(
            key=key,
            status=status,
            value=self._unpack(body),
            error=error[1:] if error else None,
            recorded_at=float(recorded),
            expires_at=float(expires) if expires else None,
        )

    def release_call(
        self,
        queue: str,
        lease: Lease,
        now: float | None,
        delay: float,
        front: bool,
        error: str | None,
    ) -> Call:
        args = [*self._lease_args(now, lease), repr(float(delay)), "1" if front else "0"]
        args += ["0", ""] if error is None else ["1", error]
        return Call("release", [self.base(queue)], args, self._moved(queue, lease, now))

    def _moved(self, queue: str, lease: Lease | None, now: float | None) -> Callable[[Any], Any]:
        """finish() for release and requeue_dead: the message and where it went."""

        def finish(reply: Any) -> Message:
            if reply[0] == b"L":
                assert lease is not None
                self._lost(queue, lease, reply, _now_of(reply, now))
            if reply[0] == b"E":
                raise KeyExists(queue, reply[2].decode())
            kind, raw = reply[2]
            msg = self.message(raw)
            n = self.notifier
            if n.waiting:
                self._woken(queue, reply[1])
                if kind == b"R":
                    n.ready(queue, msg.key)
                elif kind == b"D":
                    n.scheduled(queue, msg.available_at, msg.key)
                elif kind in (b"XR", b"XD"):
                    n.changed(queue)  # died, and its buffered follow-up took its place
                else:
                    n.space(queue)
            return msg

        return finish

    def requeue_call(
        self, queue: str, message_id: str, now: float | None, delay: float, reset: bool
    ) -> Call:
        args = [*self._head(now), message_id, repr(float(delay)), "1" if reset else "0"]
        finish = self._moved(queue, None, now)

        def named(reply: Any) -> Message:
            if reply[0] == b"E" and reply[1] == b"NotFound":
                raise MessageNotFound(queue, message_id, "dead letter")
            msg: Message = finish(reply)
            return msg

        return Call("requeue", [self.base(queue)], args, named)

    # -- reads ---------------------------------------------------------------------
    def _read(self, queue: str, now: float | None, what: str, arg: Any, fn: Any) -> Call:
        args = [*self._head(now), what, arg]
        return Call("read", [self.base(queue)], args, lambda reply: fn(reply[1], float(reply[0])))

    def get_message_call(self, queue: str, message_id: str, now: float | None) -> Call:
        return self._read(queue, now, "msg", message_id, self._maybe_message)

    def peek_key_call(self, queue: str, key: str, now: float | None) -> Call:
        return self._read(queue, now, "peek", key, self._maybe_message)

    def _maybe_message(self, raw: Any, _now: float) -> Message | None:
        return None if raw is None else self.message(raw)

    def keys_call(self, queue: str, state: State, now: float | None) -> Call:
        return self._read(
            queue, now, "keys", _STATE_ARG[State(state)], lambda raw, _n: [k.decode() for k in raw]
        )

    def count_ready_call(self, queue: str, now: float | None) -> Call:
        return self._read(queue, now, "count_ready", "", lambda raw, _n: int(raw))

    def count_live_call(self, queue: str, now: float | None) -> Call:
        return self._read(queue, now, "count_live", "", lambda raw, _n: int(raw))

    def dead_letters_call(self, queue: str, now: float | None, limit: int | None) -> Call:
        stop = -1 if limit is None else limit - 1
        return self._read(queue, now, "dead", stop, lambda raw, _n: [self.message(r) for r in raw])

    def stats_call(self, queue: str, now: float | None) -> Call:
        def decode(raw: Any, now_s: float) -> QueueStats:
            ready, delayed, leased, dead, live, av, la, flat, sum_la = raw
            owners = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
            return QueueStats(
                ready=int(ready),
                delayed=int(delayed),
                leased=int(leased),
                dead=int(dead),
                total=int(live) + int(dead),
                oldest_ready_age=None if av is None else now_s - float(av),
                oldest_leased_age=None if la is None else now_s - float(la),
                by_owner=owners,
                # now - mean(leased_at): the script sums the start times it read.
                mean_leased_age=now_s - float(sum_la) / int(leased) if int(leased) else None,
            )

        return self._read(queue, now, "stats", "", decode)

    def next_due_call(self, queue: str, now: float | None, key: str | None) -> Call:
        return self._read(queue, now, "next_due", key or "", lambda raw, _n: _f(raw))

    def get_outcome_call(self, queue: str, key: str, now: float | None) -> Call:
        def decode(raw: Any, now_s: float) -> Outcome | None:
            if raw is None:
                return None
            o = self.unpack_outcome(key, raw)
            if o.expires_at is not None and o.expires_at <= (now_s if now is None else now):
                return None
            return o

        return self._read(queue, now, "outcome", key, decode)

    # -- maintenance ---------------------------------------------------------------
    def admin_call(self, queue: str, what: str, before: float | None = None) -> Call:
        args = [*self._head(None), what, "" if before is None else repr(float(before))]

        def finish(reply: Any) -> int:
            n = int(reply)
            if what == "purge" and n and self.notifier.waiting:
                self.notifier.space(queue, n)
            return n

        return Call("admin", [self.base(queue)], args, finish)


def _now_of(reply: Any, now: float | None) -> float:
    """The moment the script judged the lease at (the server's, on its clock)."""
    return float(reply[5]) if now is None else now
