"""Operations commands: stats [--watch], health, dead, purge, migrate."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from typing import Any

import leaseq
from leaseq._core.model import Message, State
from leaseq.cli._context import Context
from leaseq.cli._errors import CliError, parse_duration
from leaseq.cli._output import (
    emit_json,
    fmt_age,
    fmt_time,
    message_doc,
    pairs,
    short,
    stats_doc,
    table,
)

__all__ = ["cmd_dead", "cmd_health", "cmd_migrate", "cmd_purge", "cmd_stats", "error_type"]

_TYPE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def error_type(msg: Message) -> str:
    """What kind of failure killed a dead letter: the exception type name the worker
    recorded (``"ValueError: ..."``), else the dead reason (``max_attempts``,
    ``lease_expired``...), else ``unknown``."""
    for text in (msg.last_error, msg.dead_reason):
        if text:
            match = _TYPE.match(text.strip())
            if match:
                return match.group(1)
            return text.splitlines()[0][:40]
    return "unknown"


# -- stats -------------------------------------------------------------------------
_STATS_HEAD = [
    "queue",
    "ready",
    "delayed",
    "leased",
    "dead",
    "total",
    "oldest ready",
    "oldest lease",
]


def _stats_rows(ctx: Context, names: list[str]) -> list[dict[str, Any]]:
    return [stats_doc(n, ctx.queue(n).stats()) for n in names]


def _stats_cells(d: dict[str, Any]) -> list[Any]:
    return [
        d["queue"],
        d["ready"],
        d["delayed"],
        d["leased"],
        d["dead"],
        d["total"],
        fmt_age(d["oldest_ready_age"]),
        fmt_age(d["oldest_leased_age"]),
    ]


def cmd_stats(ctx: Context, args: argparse.Namespace) -> int:
    """Counts and ages for one queue or every queue; ``--watch`` repeats."""
    if args.queue is not None and not args.watch:
        ctx.queue(args.queue, must_exist=True)
    if not args.watch:
        docs = _stats_rows(ctx, [args.queue] if args.queue else ctx.queue_names())
        if ctx.json:
            emit_json({"queues": docs})
        else:
            table(_STATS_HEAD, [_stats_cells(d) for d in docs])
        return 0
    return _watch(ctx, args)


def _watch(ctx: Context, args: argparse.Namespace) -> int:
    interval = parse_duration(args.interval)
    tty = sys.stdout.isatty() and not ctx.json
    previous: dict[str, int] = {}
    ticks = 0
    last = time.monotonic()
    while True:
        names = [args.queue] if args.queue else ctx.queue_names()
        docs = _stats_rows(ctx, names)
        now = time.monotonic()
        for d in docs:
            # Rate: how fast the live backlog moves (negative: draining), per second.
            live = d["ready"] + d["delayed"] + d["leased"]
            d["rate"] = (
                None
                if d["queue"] not in previous
                else ((live - previous[d["queue"]]) / max(now - last, 1e-9))
            )
            previous[d["queue"]] = live
        last = now
        _show_tick(ctx, docs, tty)
        ticks += 1
        if args.count and ticks >= args.count:
            return 0
        time.sleep(interval)


def _show_tick(ctx: Context, docs: list[dict[str, Any]], tty: bool) -> None:
    stamp = time.time()
    if ctx.json:
        emit_json({"at": stamp, "queues": docs})
        return
    rows = [[*_stats_cells(d), "-" if d["rate"] is None else f"{d['rate']:+.1f}/s"] for d in docs]
    if tty:
        sys.stdout.write("\x1b[H\x1b[2J")  # home + clear: redraw in place
    else:
        print(f"# {fmt_time(stamp)}")
    table([*_STATS_HEAD, "backlog rate"], rows)


# -- health ------------------------------------------------------------------------
def _stale(q: leaseq.Queue) -> list[Message]:
    # An expired lease leaves its message READY with "expired" as the newest event:
    # its holder died or overran without extend(). Reading each ready key is O(n).
    out = []
    for key in q.keys(State.READY):
        msg = q.peek(key)
        if msg is not None and msg.history and msg.history[-1].kind == "expired":
            out.append(msg)
    return out


def cmd_health(ctx: Context, args: argparse.Namespace) -> int:
    """Stale leases, oldest ages, dead letters by error type."""
    q = ctx.queue(args.queue, must_exist=True)
    st = q.stats()
    stale = _stale(q)
    by_type = Counter(error_type(m) for m in q.dead_letters())
    doc = {
        "queue": args.queue,
        "status": "ok" if not stale and not by_type else "warn",
        "ready": st.ready,
        "delayed": st.delayed,
        "leased": st.leased,
        "dead": st.dead,
        "stale_leases": len(stale),
        "stale_keys": [m.key for m in stale[:20]],
        "oldest_ready_age": st.oldest_ready_age,
        "oldest_leased_age": st.oldest_leased_age,
        "dead_by_error": dict(by_type.most_common()),
        "by_owner": dict(st.by_owner),
    }
    if ctx.json:
        emit_json(doc)
        return 0
    pairs(
        [
            ("queue", args.queue),
            ("status", doc["status"]),
            ("ready / delayed", f"{st.ready} / {st.delayed}"),
            ("leased", st.leased),
            (
                "stale leases",
                len(stale)
                if not stale
                else f"{len(stale)} (expired, awaiting redelivery: {', '.join(doc['stale_keys'])})",
            ),
            ("oldest ready", fmt_age(st.oldest_ready_age)),
            ("oldest lease", fmt_age(st.oldest_leased_age)),
            ("dead letters", st.dead),
        ]
    )
    if by_type:
        print()
        table(["error type", "dead letters"], by_type.most_common())
    return 0


# -- dead --------------------------------------------------------------------------
def cmd_dead(ctx: Context, args: argparse.Namespace) -> int:
    """List, summarise, requeue or prune dead letters."""
    q = ctx.queue(args.queue, must_exist=True)
    if args.requeue or args.all:
        return _requeue(ctx, q, args)
    if args.prune_older_than is not None:
        n = q.prune_dead(older_than=parse_duration(args.prune_older_than))
        if ctx.json:
            emit_json({"queue": args.queue, "pruned": n})
        else:
            print(f"pruned {n} dead letters older than {args.prune_older_than}")
        return 0
    dead = q.dead_letters(limit=None if args.summary else args.limit)
    if args.summary:
        return _summary(ctx, args.queue, dead)
    if ctx.json:
        emit_json({"queue": args.queue, "dead": [message_doc(m) for m in dead]})
    elif dead:
        table(
            ["id", "key", "attempts", "died", "type", "error"],
            [
                (
                    m.id,
                    m.key,
                    m.attempts,
                    fmt_time(_died(m)),
                    error_type(m),
                    short(m.last_error or m.dead_reason),
                )
                for m in dead
            ],
        )
    return 0


def _died(m: Message) -> float | None:
    for e in reversed(m.history):
        if e.kind == "dead":
            return e.at
    return None


def _summary(ctx: Context, queue: str, dead: list[Message]) -> int:
    by_type = Counter(error_type(m) for m in dead)
    # A reason may carry a traceback: group by its first line, the part that varies.
    by_reason = Counter((m.dead_reason or "unknown").split("\n", 1)[0] for m in dead)
    times = [t for t in (_died(m) for m in dead) if t is not None]
    now = time.time()
    oldest = (now - min(times)) if times else None
    newest = (now - max(times)) if times else None
    doc = {
        "queue": queue,
        "total": len(dead),
        "by_error": dict(by_type.most_common()),
        "by_reason": dict(by_reason.most_common()),
        "oldest_age": oldest,
        "newest_age": newest,
    }
    if ctx.json:
        emit_json(doc)
        return 0
    print(f"{len(dead)} dead letters; oldest {fmt_age(oldest)}, newest {fmt_age(newest)}")
    if dead:
        table(["error type", "count"], by_type.most_common())
        print()
        table(["reason", "count"], by_reason.most_common())
    return 0


def _requeue(ctx: Context, q: leaseq.Queue, args: argparse.Namespace) -> int:
    if args.all and args.requeue:
        raise CliError("use either --requeue ID or --all, not both")
    ids = [m.id for m in q.dead_letters()] if args.all else list(args.requeue)
    delay = parse_duration(args.delay) if args.delay else 0.0
    done: list[str] = []
    for mid in ids:
        try:
            done.append(q.requeue_dead(mid, delay=delay).id)
        except leaseq.MessageNotFound:
            raise CliError(
                f"queue {args.queue!r}: no dead letter {mid!r} (requeued so far: {len(done)})"
            ) from None
    if ctx.json:
        emit_json({"queue": args.queue, "requeued": done})
    else:
        print(f"requeued {len(done)} dead letters")
    return 0


# -- purge / migrate ---------------------------------------------------------------
def cmd_purge(ctx: Context, args: argparse.Namespace) -> int:
    """Delete every message of a queue (live and dead); needs ``--yes``."""
    q = ctx.queue(args.queue, must_exist=True)
    if not args.yes:
        total = q.stats().total
        raise CliError(
            f"purge deletes all {total} messages of queue {args.queue!r}, "
            "live and dead; pass --yes to do it"
        )
    n = q.purge()
    if ctx.json:
        emit_json({"queue": args.queue, "purged": n})
    else:
        print(f"purged {n} messages from {args.queue!r}")
    return 0


def cmd_migrate(ctx: Context, args: argparse.Namespace) -> int:
    """Bring the store's schema up to date when the store has such a step."""
    store: Any = ctx.store  # opening a durable store already refuses a newer schema
    migrate = getattr(store, "migrate", None)
    if callable(migrate):
        result = migrate()
        doc = {"store": store.url, "migrated": True, "detail": result}
        text = f"{store.url}: migrated" + ("" if result is None else f" ({result})")
    else:
        doc = {
            "store": store.url,
            "migrated": False,
            "detail": "this store needs no migration step (it checks its schema on open)",
        }
        text = f"{store.url}: needs no migration (its schema is checked and upgraded on open)"
    if ctx.json:
        emit_json(doc)
    else:
        print(text)
    return 0
