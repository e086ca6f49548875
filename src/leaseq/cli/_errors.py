"""What the command line reports as a one-line error, and small argument parsers."""

from __future__ import annotations

import math
import re

__all__ = ["CliError", "parse_duration"]


class CliError(Exception):
    """A problem the user can fix; printed as one line on stderr, exit status 1."""


_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"12h"``, ``"7d"``, ``"2w"`` -> seconds."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise CliError(f"bad duration {text!r}; use a number of seconds or 30s, 15m, 12h, 7d, 2w")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds):
        raise CliError(f"bad duration {text!r}")
    return seconds
