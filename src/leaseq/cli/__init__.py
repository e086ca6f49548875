"""The ``leaseq`` command line (``leaseq ...`` or ``python -m leaseq ...``).

Every command uses only the public ``leaseq.Queue`` API and the store
protocol. Exit status: 0 success, 1 an error (one line on stderr, no traceback
unless ``--debug``), 2 a usage error, 130 interrupted. JSON shapes: docs/cli.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from leaseq.cli._errors import CliError

__all__ = ["main"]

Command = Callable[..., int]


def _commands() -> dict[str, Command]:
    from leaseq.cli import _messages as m
    from leaseq.cli import _ops as o
    from leaseq.cli import _run as r

    return {
        "put": m.cmd_put,
        "get": m.cmd_get,
        "ack": m.cmd_ack,
        "release": m.cmd_ack,
        "dead-letter": m.cmd_ack,
        "inspect": m.cmd_inspect,
        "keys": m.cmd_keys,
        "stats": o.cmd_stats,
        "health": o.cmd_health,
        "dead": o.cmd_dead,
        "purge": o.cmd_purge,
        "migrate": o.cmd_migrate,
        "exec": r.cmd_exec,
        "worker": r.cmd_worker,
    }


def _one_line(exc: BaseException) -> str:
    from leaseq.errors import LeaseqError

    text = " ".join(str(exc).split()) or type(exc).__name__
    # Our own errors and argument errors read well alone; anything else keeps its type.
    if isinstance(exc, (CliError, LeaseqError, ValueError, TypeError, OSError)):
        return text
    return f"{type(exc).__name__}: {text}"


def _split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``exec`` options stop at the first ``--``: what follows is CMD ARGS, verbatim."""
    if "--" not in argv:
        return argv, None
    cut = argv.index("--")
    if _command_word(argv[:cut]) != "exec":
        return argv, None  # argparse's own "--" (e.g. put q -- -5)
    return argv[:cut], argv[cut + 1 :]


def _command_word(argv: list[str]) -> str | None:
    """The first word that is neither an option nor the value of --store."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--store":
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    from leaseq.cli._context import Context
    from leaseq.cli._parser import build_parser

    argv = list(sys.argv[1:] if argv is None else argv)
    argv, cmd = _split_command(argv)
    args = build_parser().parse_args(argv)
    if cmd is not None:
        args.cmd = cmd
    ctx = Context(args)
    try:
        return _commands()[args.command](ctx, args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1  # e.g. `leaseq keys q | head`: the reader is gone, nothing to report
    except Exception as exc:
        if args.debug:
            raise
        print(f"leaseq {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        try:
            ctx.close()
        except Exception:
            if args.debug:
                raise


if __name__ == "__main__":
    sys.exit(main())
