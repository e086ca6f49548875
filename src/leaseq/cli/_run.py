"""Long-running commands on ``leaseq.Worker``: ``exec`` and ``worker``.

Both run one Worker in the foreground (SIGINT/SIGTERM: stop claiming, finish
what runs, hand back the rest, exit 0) with a progress line, and print a
summary when they stop. ``worker --processes N`` starts N copies of itself
and forwards SIGTERM/SIGINT to them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import leaseq
from leaseq.cli._context import Context
from leaseq.cli._errors import CliError, parse_duration
from leaseq.cli._exec import CommandHandler
from leaseq.cli._output import emit_json
from leaseq.cli._progress import Progress, counts

__all__ = ["cmd_exec", "cmd_worker", "load_handler"]


def _worker_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"concurrency": args.concurrency}
    if args.concurrency < 1:
        raise CliError(f"--concurrency must be >= 1, got {args.concurrency}")
    if args.max_attempts is not None:
        if args.max_attempts < 1:
            raise CliError(f"--max-attempts must be >= 1, got {args.max_attempts}")
        opts["retry"] = leaseq.Retry(max_attempts=args.max_attempts)
    if args.lease_timeout is not None:
        opts["lease_timeout"] = parse_duration(args.lease_timeout)
    if args.owner:
        opts["owner"] = args.owner
    return opts


def _drained(ctx: Context, queue: str) -> Callable[[], bool]:
    store = ctx.store

    def drained() -> bool:
        now = None if store.server_clock else time.time()
        return store.count_live(queue, now=now) == 0

    return drained


class _LogLine(logging.Formatter):
    """``time LEVEL message``: the message's first line only, unless ``keep_all``
    (a dead letter's error carries its traceback summary: --debug shows it)."""

    def __init__(self, keep_all: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")
        self._keep_all = keep_all

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if self._keep_all else text.split("\n", 1)[0]


def _run_worker(
    ctx: Context, args: argparse.Namespace, label: str, handler: Any, **extra: Any
) -> int:
    # The worker logs retries and dead letters; give those lines a time stamp, and
    # keep each to one line (the store keeps the whole error) unless --debug.
    handler_ = logging.StreamHandler()
    handler_.setFormatter(_LogLine(keep_all=bool(getattr(args, "debug", False))))
    logging.basicConfig(level=logging.WARNING, handlers=[handler_])
    q = ctx.queue(args.queue)
    if args.drain:
        extra["poll_interval"] = 0.05  # notice the stop soon after the queue drains
    worker = leaseq.Worker(q, handler, **_worker_options(args), **extra)
    progress = Progress(
        label,
        lambda: worker.stats,
        stop_worker=worker.stop,
        drained=_drained(ctx, args.queue) if args.drain else None,
        log_every=parse_duration(args.log_every),
        quiet=args.quiet,
    )
    progress.start()
    try:
        worker.run()
    finally:
        progress.stop()
    _summary(ctx, args.queue, label, counts(worker.stats), time.monotonic() - progress.started)
    return 0


def _summary(ctx: Context, queue: str, label: str, c: dict[str, int], secs: float) -> None:
    rate = c["succeeded"] / secs if secs > 0 else 0.0
    if ctx.json:
        emit_json({"queue": queue, "pid": os.getpid(), **c, "seconds": secs, "rate": rate})
    else:
        print(
            f"{label}: {c['succeeded']} succeeded, {c['dead_lettered']} dead-lettered, "
            f"{c['failed']} failed attempts, {c['retried']} retried in {secs:.1f}s "
            f"({rate:.1f}/s)"
        )


# -- exec --------------------------------------------------------------------------
def cmd_exec(ctx: Context, args: argparse.Namespace) -> int:
    """Run CMD for each message of QUEUE."""
    cmd = list(args.cmd)
    if not cmd:
        raise CliError("exec needs a command after --, e.g. leaseq exec jobs -- ./handle.sh")
    handler = CommandHandler(args.queue, cmd)
    return _run_worker(ctx, args, f"exec {args.queue}", handler, pass_lease=True)


# -- worker ------------------------------------------------------------------------
def load_handler(spec: str) -> Callable[..., Any]:
    """Import ``module:function`` (the current directory is importable, as with -m)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"{spec!r} is not module:function (e.g. myapp.tasks:handle)")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:  # the module's own code failed while importing
        raise CliError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise CliError(f"{spec} is a {type(obj).__name__}, not a function")
    return obj  # type: ignore[no-any-return]


def cmd_worker(ctx: Context, args: argparse.Namespace) -> int:
    """Run ``module:function`` as the handler of a Worker (or N worker processes)."""
    handler = load_handler(args.handler)  # fail fast, before any process starts
    if args.processes < 1:
        raise CliError(f"--processes must be >= 1, got {args.processes}")
    if args.processes > 1:
        return _supervise(ctx, args)
    kind = "async " if inspect.iscoroutinefunction(handler) else ""
    return _run_worker(ctx, args, f"worker {args.queue} ({kind}{args.handler})", handler)


def _durable(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return False
    return not (parts.scheme == "sqlite" and parts.path in ("", "/", "/:memory:"))


def _child_argv(ctx: Context, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "leaseq", "--store", ctx.url]
    if ctx.json:
        argv.append("--json")
    if args.debug:
        argv.append("--debug")
    argv += [
        "worker",
        args.handler,
        "--queue",
        args.queue,
        "--processes",
        "1",
        "--concurrency",
        str(args.concurrency),
        "--log-every",
        args.log_every,
    ]
    for flag, value in (
        ("--max-attempts", args.max_attempts),
        ("--lease-timeout", args.lease_timeout),
        ("--owner", args.owner),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if args.drain:
        argv.append("--drain")
    if args.quiet:
        argv.append("--quiet")
    return argv


def _supervise(ctx: Context, args: argparse.Namespace) -> int:
    if not _durable(ctx.url):
        raise CliError(f"--processes needs a durable store every process can open, not {ctx.url}")
    # Children inherit the environment and the working directory, so they import
    # leaseq and the handler the way this process did.
    children = [subprocess.Popen(_child_argv(ctx, args)) for _ in range(args.processes)]

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return max(codes, default=0) if all(c >= 0 for c in codes) else 1
