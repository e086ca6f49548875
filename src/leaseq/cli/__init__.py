"""The ``leaseq`` command line. For now it only prints help and the version;
the full CLI (put, get, exec, worker, stats, dead, ...) comes with its own issue."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    import leaseq

    parser = argparse.ArgumentParser(
        prog="leaseq",
        description="A keyed, leased queue (the command set is not written yet).",
    )
    parser.add_argument("--version", action="version", version=f"leaseq {leaseq.__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
