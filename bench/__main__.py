"""Entry point: ``python -m bench [topic ...] [--rounds N] [--quick]``.

Topics are modules of this package with a ``run(args)`` function.
"""

from __future__ import annotations

import argparse
import importlib

TOPICS = {
    "memory": "bench.memory",
    "sqlite": "bench.sqlite",
    "file": "bench.file",
    "runner": "bench.runner",
    "worker": "bench.worker",
    "cli": "bench.cli",
    "postgres": "bench.postgres",
    "redis": "bench.redis",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("topics", nargs="*", help=f"any of {', '.join(TOPICS)} (default: all)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    for topic in args.topics or list(TOPICS):
        if topic not in TOPICS:
            parser.error(f"unknown topic {topic!r}; choose from {', '.join(TOPICS)}")
        try:
            module = importlib.import_module(TOPICS[topic])
        except ModuleNotFoundError as exc:
            if exc.name == TOPICS[topic]:
                print(f"(topic {topic}: not written yet)")
                continue
            raise
        print(f"\n# {topic}")
        module.run(args)


if __name__ == "__main__":
    main()
