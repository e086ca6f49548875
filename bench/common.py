"""Shared benchmark plumbing: interleaved rounds, medians, ratio tables.

Every scenario module exposes ``run(args) -> None`` and registers itself in
``bench.__main__.TOPICS``. Measurements interleave contenders round by round
(A, B, C, A, B, C, ...) so machine noise hits every contender alike, and
report the median of the rounds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Row", "Table", "interleave", "print_grid", "print_table", "print_tables", "rate"]


@dataclass
class Row:
    """One contender's median figure; ``unit`` says what the number means."""

    name: str
    value: float
    unit: str = "ops/s"
    note: str = ""


@dataclass
class Table:
    """A titled group of rows; ratios are against ``baseline`` (a row name)."""

    title: str
    baseline: str
    rows: list[Row] = field(default_factory=list)
    higher_is_better: bool = True


def interleave(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Call each contender once per round, round-robin; return each one's median."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(fn())
    return {name: statistics.median(values) for name, values in samples.items()}


def rate(n: int, fn: Callable[[], None]) -> float:
    """Run ``fn`` (which performs ``n`` operations) and return operations per second."""
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def print_table(table: Table) -> None:
    """Print the table with each row's ratio to the baseline row."""
    base = next((r.value for r in table.rows if r.name == table.baseline), None)
    width = max([len(r.name) for r in table.rows] + [10])
    print(f"\n## {table.title}  (ratio vs {table.baseline})")
    print(f"{'contender'.ljust(width)}  {'value':>14}  {'unit':<8}  {'ratio':>7}  note")
    for r in table.rows:
        if base:
            ratio = r.value / base if table.higher_is_better else base / r.value
            ratio_s = f"{ratio:7.2f}"
        else:
            ratio_s = "    n/a"
        print(f"{r.name.ljust(width)}  {r.value:14,.1f}  {r.unit:<8}  {ratio_s}  {r.note}")


def print_tables(tables: Sequence[Table]) -> None:
    for t in tables:
        print_table(t)


def print_grid(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain table of pre-formatted cells (first column left-aligned, others right)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    print(f"\n## {title}")
    for cells in (header, *rows):
        first, *rest = (str(c) for c in cells)
        parts = [first.ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)
        ]
        print("  ".join(parts).rstrip())
