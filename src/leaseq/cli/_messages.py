"""Commands on single messages: put, get, ack, release, dead-letter, inspect, keys.

``get`` prints a *handle* ``ID:TOKEN``; ``ack``/``release``/``dead-letter`` take
that handle (or ``ID TOKEN`` as two arguments). The token is required: the
store only accepts a lease operation whose token still holds the message, so
a command that has lost its lease can never ack someone else's work.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import leaseq
from leaseq._core.model import Lease, Message, State
from leaseq.cli._context import Context
from leaseq.cli._errors import CliError, parse_duration
from leaseq.cli._output import (
    emit_json,
    fmt_time,
    lease_doc,
    message_doc,
    pairs,
    short,
    table,
    value_text,
)

__all__ = ["cmd_ack", "cmd_get", "cmd_inspect", "cmd_keys", "cmd_put", "split_handle"]


# -- put ---------------------------------------------------------------------------
def _parse_value(text: str, raw: bool, where: str) -> Any:
    if raw:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "quote strings as JSON or pass --raw to store the text as it is"
        ) from None


def _put_values(args: argparse.Namespace) -> list[Any]:
    if args.lines:
        lines = [ln for ln in sys.stdin.read().splitlines() if ln.strip()]
        return [_parse_value(ln, args.raw, f"stdin line {i}") for i, ln in enumerate(lines, 1)]
    if args.value is None or args.value == "-":
        text = sys.stdin.read()
        return [_parse_value(text if args.raw else text.strip(), args.raw, "stdin")]
    return [_parse_value(args.value, args.raw, "VALUE")]


def _put_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"priority": args.priority}
    if args.delay is not None:
        opts["delay"] = parse_duration(args.delay)
    if args.at is not None:
        opts["at"] = args.at
    if args.if_ready:
        opts["if_ready"] = args.if_ready
    if args.if_in_flight:
        opts["if_in_flight"] = args.if_in_flight
    return opts


def cmd_put(ctx: Context, args: argparse.Namespace) -> int:
    """Put one value (or one per stdin line with ``--lines``)."""
    values = _put_values(args)
    opts = _put_options(args)
    if args.key is not None and len(values) != 1:
        raise CliError("--key names one message; it cannot be used with --lines")
    q = ctx.queue(args.queue)
    if len(values) == 1:
        msgs = [q.put(values[0], key=args.key, block=False, **opts)]
    else:
        msgs = q.put_many([(v, opts) for v in values])
    if ctx.json:
        docs = [message_doc(m) for m in msgs]
        emit_json(docs[0] if not args.lines else {"queue": args.queue, "messages": docs})
    elif len(msgs) == 1:
        m = msgs[0]
        print(f"put {m.id} key={m.key} state={m.state} available_at={fmt_time(m.available_at)}")
    else:
        print(f"put {len(msgs)} messages on {args.queue!r}")
    return 0


# -- get ---------------------------------------------------------------------------
def cmd_get(ctx: Context, args: argparse.Namespace) -> int:
    """Lease one message and print it with its handle."""
    q = ctx.queue(args.queue)
    lease_timeout = parse_duration(args.lease_timeout) if args.lease_timeout else None
    wait = parse_duration(args.timeout) if args.timeout is not None else None
    try:
        if wait is None:
            lease = q.get(block=False, lease_timeout=lease_timeout, owner=args.owner)
        else:
            lease = q.get(timeout=wait, lease_timeout=lease_timeout, owner=args.owner)
    except leaseq.Empty:
        waited = f" after waiting {args.timeout}" if wait else ""
        raise CliError(f"queue {args.queue!r} has no message ready{waited}") from None
    if ctx.json:
        emit_json(lease_doc(args.queue, lease))
        return 0
    pairs(
        [
            ("handle", f"{lease.message.id}:{lease.token}"),
            ("key", lease.key),
            ("attempt", lease.attempt),
            ("expires", fmt_time(lease.expires_at)),
            ("value", value_text(lease.value, 2000)),
        ]
    )
    return 0


# -- ack / release / dead-letter ---------------------------------------------------
def split_handle(handle: str, token: str | None) -> tuple[str, str]:
    """``ID:TOKEN`` (or ``ID`` plus ``TOKEN``) -> (id, token); refuses a bare id."""
    if token is not None:
        return handle, token
    mid, sep, tok = handle.rpartition(":")
    if not sep or not mid or not tok:
        raise CliError(
            f"{handle!r} is not a lease handle; pass the ID:TOKEN that `leaseq get` printed "
            "(or ID TOKEN): the token proves the lease is still yours"
        )
    return mid, tok


def _held_lease(q: leaseq.Queue, queue: str, handle: str, token: str | None) -> Lease:
    mid, tok = split_handle(handle, token)
    try:
        msg = q.inspect(mid)
    except leaseq.MessageNotFound:
        raise CliError(
            f"queue {queue!r}: no message {mid!r} (already acked, purged, or a wrong id/queue)"
        ) from None
    # The store judges this lease by message id and token alone (fencing).
    expires = msg.lease_expires_at if msg.lease_expires_at is not None else 0.0
    return Lease(msg.key, msg.value, tok, msg.attempts, expires, msg)


def cmd_ack(ctx: Context, args: argparse.Namespace) -> int:
    """ack / release / dead-letter a lease named by its handle."""
    q = ctx.queue(args.queue)
    lease = _held_lease(q, args.queue, args.handle, args.token)
    action: str = args.command
    result: Message | None = None
    if action == "ack":
        q.ack(lease)
    elif action == "release":
        delay = parse_duration(args.delay) if args.delay else 0.0
        result = q.release(lease, delay=delay, front=args.front, error=args.error)
    else:
        result = q.dead_letter(lease, error=args.error)
    if ctx.json:
        emit_json(
            {
                "queue": args.queue,
                "action": action,
                "id": lease.message.id,
                "message": None if result is None else message_doc(result),
            }
        )
    else:
        state = "" if result is None else f" (now {result.state})"
        print(f"{action} {lease.message.id}{state}")
    return 0


# -- inspect -----------------------------------------------------------------------
def _find(q: leaseq.Queue, ident: str) -> Message | None:
    try:
        return q.inspect(ident)
    except leaseq.MessageNotFound:
        pass
    live = q.peek(ident)
    if live is not None:
        return live
    dead = [m for m in q.dead_letters() if m.key == ident]
    return dead[-1] if dead else None


def cmd_inspect(ctx: Context, args: argparse.Namespace) -> int:
    """Show one message by id, or by key (its live message, else its newest dead letter)."""
    q = ctx.queue(args.queue, must_exist=True)
    msg = _find(q, args.ident)
    if msg is None:
        raise CliError(f"queue {args.queue!r}: no message with id or key {args.ident!r}")
    if ctx.json:
        emit_json(message_doc(msg))
        return 0
    pairs(
        [
            ("id", msg.id),
            ("key", msg.key),
            ("state", msg.state),
            ("priority", msg.priority),
            (
                "attempts",
                msg.attempts if msg.max_attempts is None else f"{msg.attempts}/{msg.max_attempts}",
            ),
            ("created", fmt_time(msg.created_at)),
            ("available", fmt_time(msg.available_at)),
            ("lease expires", fmt_time(msg.lease_expires_at)),
            ("leased by", msg.leased_by or "-"),
            (
                "dead reason",
                "(the last error)"
                if msg.dead_reason and msg.dead_reason == msg.last_error
                else msg.dead_reason or "-",
            ),
            ("last error", msg.last_error or "-"),
            ("value", value_text(msg.value, 2000)),
        ]
    )
    if msg.history:
        print()
        table(
            ["at", "event", "detail"],
            [(fmt_time(e.at), e.kind, short(e.detail, 100)) for e in msg.history],
        )
    return 0


# -- keys --------------------------------------------------------------------------
def cmd_keys(ctx: Context, args: argparse.Namespace) -> int:
    """List keys with their state (READY includes delayed messages)."""
    q = ctx.queue(args.queue, must_exist=True)
    states = [State(args.state)] if args.state else [State.READY, State.LEASED, State.DEAD]
    rows = [(k, str(st)) for st in states for k in q.keys(st)]
    if ctx.json:
        emit_json(
            {
                "queue": args.queue,
                "state": args.state,
                "keys": [{"key": k, "state": s} for k, s in rows],
            }
        )
    elif rows:
        table(["key", "state"], rows)
    return 0
