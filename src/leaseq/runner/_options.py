"""``TaskOptions``: the per-task settings, immutable and reusable."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leaseq._core.rules import check_priority

__all__ = ["OPTION_FIELDS", "TaskOptions", "resolve_options"]


def _check_float(name: str, value: float | None, *, allow_zero: bool, allow_none: bool) -> None:
    if value is None:
        if not allow_none:
            raise TypeError(f"{name} must be a number")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or math.isinf(value):
        raise ValueError(
            f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, got {value}"
        )


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How one task runs. Build once and reuse, or pass fields to ``submit`` directly.

    * ``priority``: int in [-1000, 1000]; **higher runs first** (as everywhere in leaseq).
    * ``must_complete``: survives ``fail_first`` aborts and run timeouts with
      ``on_exit="complete_priority"``; only ``shutdown(force=True)``, ``on_exit="cancel"``
      or an explicit ``handle.cancel()`` stop it.
    * ``timeout``: seconds per attempt (the runner's clock). An async task is
      cancelled; a sync task's thread cannot be stopped, and its result says so
      (``still_running=True``).
    * ``retries``: extra attempts after a failure (an ``Exception``; a
      ``BaseException`` is recorded as a failure and never retried).
    * ``retry_delay`` / ``backoff``: the n-th retry waits ``retry_delay * backoff**(n-1)``
      in the queue, not in a worker: other tasks run meanwhile.
    * ``delay`` / ``run_at`` (exclusive): start no earlier than ``now + delay`` or the
      clock time ``run_at`` (epoch seconds with the default clock).
    * ``name``, ``group_id``, ``metadata``: carried onto the handle and the result.
    * ``detached``: runs (and ``run()`` waits for it) but stays out of run summaries.
    """

    priority: int = 0
    must_complete: bool = False
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    backoff: float = 1.0
    delay: float | None = None
    run_at: float | None = None
    name: str | None = None
    group_id: str | None = None
    detached: bool = False
    metadata: Any = None

    def __post_init__(self) -> None:
        check_priority(self.priority)
        _check_float("timeout", self.timeout, allow_zero=False, allow_none=True)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError(f"retries must be an int, not {self.retries!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        _check_float("retry_delay", self.retry_delay, allow_zero=True, allow_none=False)
        _check_float("backoff", self.backoff, allow_zero=False, allow_none=False)
        _check_float("delay", self.delay, allow_zero=True, allow_none=True)
        if self.run_at is not None and (
            isinstance(self.run_at, bool) or not isinstance(self.run_at, (int, float))
        ):
            raise TypeError(f"run_at must be a clock time in seconds, not {self.run_at!r}")
        if self.delay is not None and self.run_at is not None:
            raise ValueError("pass either delay= or run_at=, not both")

    def replace(self, **overrides: Any) -> TaskOptions:
        """A validated copy with ``overrides`` applied."""
        return dataclasses.replace(self, **overrides)

    def retry_wait(self, attempt: int) -> float:
        """Seconds the queue holds the task back after failed attempt number ``attempt``."""
        return float(self.retry_delay * self.backoff ** (attempt - 1))


OPTION_FIELDS = frozenset(f.name for f in dataclasses.fields(TaskOptions))
DEFAULT_OPTIONS = TaskOptions()


def resolve_options(
    opts: TaskOptions | None, overrides: Mapping[str, Any], base: TaskOptions = DEFAULT_OPTIONS
) -> TaskOptions:
    """``opts`` (or ``base``) with ``overrides`` applied; TypeError names unknown fields."""
    if not overrides:
        return base if opts is None else opts
    unknown = set(overrides) - OPTION_FIELDS
    if unknown:
        raise TypeError(f"unknown task option(s): {', '.join(sorted(unknown))}")
    return dataclasses.replace(base if opts is None else opts, **overrides)
