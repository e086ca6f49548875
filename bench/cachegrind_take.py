"""Cache misses per ``take(own key)`` cycle, 1 task vs 1,000 tasks, counted by valgrind.

Scenario 4 of ``python -m bench memory`` times 1,000 tasks blocked in
``take(own key)`` against one task doing as many cycles. What separates them
is memory: with 1,000 tasks, a wake-up touches frames, waiters and futures
that left the caches while the other 999 ran. Wall-clock ratios of that
scenario vary by several percent between runs; simulated cache misses do not.

Run (from the repository root, valgrind installed)::

    .venv/bin/python bench/cachegrind_take.py            # both modes
    .venv/bin/python bench/cachegrind_take.py --one MODE ROUNDS   # no valgrind

Each mode runs twice under ``valgrind --tool=cachegrind`` with a 1 MB last-level
cache (about a core's L2), for 2 and 6 rounds of 1,000 cycles; the difference
divided by 4,000 is the cost of one cycle, free of start-up and task creation.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
KEYS = 1000
LL = "--LL=1048576,16,64"


def one(mode: str, rounds: int) -> None:
    from bench.memory import leaseq_take_sample

    rng = random.Random(2)
    keys = [f"key-{i}" for i in range(KEYS)]
    orders = [rng.sample(keys, len(keys)) for _ in range(rounds)]
    gc.collect()
    gc.freeze()  # start-up objects stay out of the collector's traversals
    asyncio.run(leaseq_take_sample(mode == "many", orders))


def counts(mode: str, rounds: int) -> tuple[int, int]:
    """(instructions, last-level data misses) of one run."""
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", LL]
    cmd += ["--cachegrind-out-file=/dev/null", sys.executable, __file__]
    cmd += ["--one", mode, str(rounds)]
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict layouts every run
    err = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stderr

    def num(label: str) -> int:
        match = re.search(label + r"\s*([\d,]+)", err)
        if match is None:
            raise RuntimeError(f"no {label!r} in valgrind's output:\n{err}")
        return int(match.group(1).replace(",", ""))

    return num(r"I\s+refs:"), num(r"LLd misses:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", nargs=2, metavar=("MODE", "ROUNDS"), help="one|many, rounds")
    args = parser.parse_args()
    if args.one:
        one(args.one[0], int(args.one[1]))
        return
    runs = [(mode, r) for mode in ("one", "many") for r in (2, 6)]
    with ThreadPoolExecutor(2) as pool:
        got = dict(zip(runs, pool.map(lambda run: counts(*run), runs), strict=True))
    print(f"per take(own key) cycle (valgrind cachegrind, {LL}):")
    for mode in ("one", "many"):
        (ir2, ll2), (ir6, ll6) = got[(mode, 2)], got[(mode, 6)]
        cycles = 4 * KEYS
        label = "1 task" if mode == "one" else f"{KEYS:,} tasks"
        ir, ll = (ir6 - ir2) / cycles, (ll6 - ll2) / cycles
        print(f"  {label:<12} {ir:>10,.0f} Ir  {ll:>7.1f} LL misses")


if __name__ == "__main__":
    main()
