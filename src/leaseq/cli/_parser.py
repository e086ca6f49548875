"""The argparse tree of ``leaseq``. Global options work before or after the command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["build_parser"]

_DESCRIPTION = """\
A keyed, leased queue from the shell. The store comes from --store URL, else
$LEASEQ_STORE, else sqlite:///./leaseq.db. Output is a table; --json prints
one JSON document per line (shapes in docs/cli.md). Errors: one line on
stderr, exit status 1 (2 for usage); --debug shows the traceback."""


def _globals(p: argparse.ArgumentParser, *, top: bool) -> None:
    # Sub-parsers use SUPPRESS so an option given before the command is not reset.
    d: Callable[[Any], Any] = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    p.add_argument(
        "--store",
        metavar="URL",
        default=d(None),
        help="store URL (default: $LEASEQ_STORE or sqlite:///./leaseq.db)",
    )
    p.add_argument(
        "--json", action="store_true", default=d(False), help="print JSON instead of tables"
    )
    p.add_argument(
        "--debug", action="store_true", default=d(False), help="show tracebacks on errors"
    )


def _cmd(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    _globals(p, top=False)
    return p


def _message_commands(sub: Any) -> None:
    p = _cmd(sub, "put", "put a JSON value (or --raw text) on a queue")
    p.add_argument("queue")
    p.add_argument("value", nargs="?", help="JSON value; '-' or absent: read stdin")
    p.add_argument("--raw", action="store_true", help="store the text as a string, not JSON")
    p.add_argument("--lines", action="store_true", help="one message per stdin line")
    p.add_argument("--key")
    p.add_argument("--priority", type=int, default=0, help="[-1000, 1000], higher first")
    p.add_argument("--delay", metavar="DURATION", help="e.g. 30s, 5m, 2h")
    p.add_argument("--at", type=float, metavar="EPOCH", help="deliver at this epoch time")
    p.add_argument("--if-ready", choices=["update", "replace", "keep", "reject"])
    p.add_argument("--if-in-flight", choices=["update", "reject", "buffer", "keep"])

    p = _cmd(sub, "get", "lease one message and print it with its handle ID:TOKEN")
    p.add_argument("queue")
    p.add_argument("--lease-timeout", metavar="DURATION", help="how long the lease holds")
    p.add_argument("--timeout", metavar="DURATION", help="wait this long for a message")
    p.add_argument("--owner", help="recorded as leased_by")

    for name, text in (
        ("ack", "finish a leased message (deletes it)"),
        ("release", "hand a leased message back"),
        ("dead-letter", "move a leased message to the dead letters"),
    ):
        p = _cmd(sub, name, text)
        p.add_argument("queue")
        p.add_argument("handle", help="ID:TOKEN as printed by get (or ID, then TOKEN)")
        p.add_argument("token", nargs="?", help="the lease token, when HANDLE is a bare id")
        if name != "ack":
            p.add_argument("--error", help="reason recorded on the message")
        if name == "release":
            p.add_argument("--delay", metavar="DURATION")
            p.add_argument("--front", action="store_true", help="at the head of its priority")

    p = _cmd(sub, "inspect", "show one message by id or key")
    p.add_argument("queue")
    p.add_argument("ident", metavar="ID-OR-KEY")

    p = _cmd(sub, "keys", "list keys and their states")
    p.add_argument("queue")
    p.add_argument("--state", choices=["ready", "leased", "dead"])


def _ops_commands(sub: Any) -> None:
    p = _cmd(sub, "stats", "counts and ages of one queue or all")
    p.add_argument("queue", nargs="?")
    p.add_argument("--watch", action="store_true", help="repeat until interrupted")
    p.add_argument("--interval", default="2", metavar="DURATION", help="--watch period")
    p.add_argument("--count", type=int, default=0, help="--watch: stop after N refreshes")

    p = _cmd(sub, "health", "stale leases, oldest ages, dead letters by error type")
    p.add_argument("queue")

    p = _cmd(sub, "dead", "list, summarise, requeue or prune dead letters")
    p.add_argument("queue")
    p.add_argument("--summary", action="store_true", help="counts by error type and reason")
    p.add_argument("--requeue", action="append", default=[], metavar="ID")
    p.add_argument("--all", action="store_true", help="requeue every dead letter")
    p.add_argument("--delay", metavar="DURATION", help="requeue with this delay")
    p.add_argument("--prune-older-than", metavar="DURATION", help="e.g. 7d")
    p.add_argument("--limit", type=int, default=None, help="list at most N")

    p = _cmd(sub, "purge", "delete every message of a queue (needs --yes)")
    p.add_argument("queue")
    p.add_argument("--yes", action="store_true")

    _cmd(sub, "migrate", "bring the store's schema up to date")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--max-attempts", type=int, help="then dead-letter (default: the worker's)")
    p.add_argument("--lease-timeout", metavar="DURATION")
    p.add_argument("--owner", help="worker name recorded as leased_by")
    p.add_argument("--drain", action="store_true", help="exit once the queue holds no live message")
    p.add_argument(
        "--log-every",
        default="10",
        metavar="DURATION",
        help="progress log period when not on a terminal",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _run_commands(sub: Any) -> None:
    p = _cmd(sub, "exec", "run a command per message: leaseq exec QUEUE -- CMD ARGS...")
    p.add_argument("queue")
    _run_options(p)
    # main() cuts the argv at the first "--": everything after it is the command.
    p.set_defaults(cmd=[])

    p = _cmd(sub, "worker", "run module:function as a worker")
    p.add_argument("handler", metavar="module:function")
    p.add_argument("--queue", default="default")
    p.add_argument("--processes", type=int, default=1, help="N worker processes (durable stores)")
    _run_options(p)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; each sub-parser sets ``command``."""
    import leaseq

    parser = argparse.ArgumentParser(
        prog="leaseq",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"leaseq {leaseq.__version__}")
    _globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _message_commands(sub)
    _ops_commands(sub)
    _run_commands(sub)
    return parser
