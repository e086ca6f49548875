"""Rendering: JSON documents for scripts (shapes in docs/cli.md) and plain tables for people."""

from __future__ import annotations

import base64
import datetime as _dt
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from leaseq._core.model import Lease, Message, QueueStats

__all__ = [
    "emit_json",
    "fmt_age",
    "fmt_time",
    "handle_of",
    "lease_doc",
    "message_doc",
    "pairs",
    "short",
    "stats_doc",
    "table",
    "value_text",
]


def _default(obj: object) -> Any:
    # Values come back from the store as JSON-able data, bytes, or (pickle) anything.
    if isinstance(obj, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(obj)).decode("ascii")}
    return repr(obj)


def emit_json(doc: Any, out: TextIO | None = None) -> None:
    """Write one JSON document on one line (JSON Lines when called repeatedly)."""
    stream = out or sys.stdout
    stream.write(json.dumps(doc, default=_default, sort_keys=False) + "\n")
    stream.flush()


def handle_of(lease: Lease) -> str:
    """The handle ``ack``/``release``/``dead-letter`` take: ``ID:TOKEN``."""
    return f"{lease.message.id}:{lease.token}"


def message_doc(msg: Message) -> dict[str, Any]:
    """The stable JSON shape of a message."""
    return {
        "id": msg.id,
        "key": msg.key,
        "value": msg.value,
        "priority": msg.priority,
        "state": str(msg.state),
        "attempts": msg.attempts,
        "max_attempts": msg.max_attempts,
        "created_at": msg.created_at,
        "available_at": msg.available_at,
        "lease_expires_at": msg.lease_expires_at,
        "leased_by": msg.leased_by,
        "last_error": msg.last_error,
        "dead_reason": msg.dead_reason,
        "history": [{"at": e.at, "kind": e.kind, "detail": e.detail} for e in msg.history],
    }


def lease_doc(queue: str, lease: Lease) -> dict[str, Any]:
    """The stable JSON shape ``get`` prints."""
    return {
        "queue": queue,
        "handle": handle_of(lease),
        "id": lease.message.id,
        "token": lease.token,
        "key": lease.key,
        "value": lease.value,
        "attempt": lease.attempt,
        "expires_at": lease.expires_at,
    }


def stats_doc(queue: str, st: QueueStats) -> dict[str, Any]:
    """The stable JSON shape of one queue's stats."""
    return {
        "queue": queue,
        "ready": st.ready,
        "delayed": st.delayed,
        "leased": st.leased,
        "dead": st.dead,
        "total": st.total,
        "oldest_ready_age": st.oldest_ready_age,
        "oldest_leased_age": st.oldest_leased_age,
        "by_owner": dict(st.by_owner),
    }


def value_text(value: Any, width: int = 60) -> str:
    """A value as one short line for a table cell."""
    if isinstance(value, (bytes, bytearray)):
        text = f"<{len(value)} bytes>"
    else:
        try:
            text = json.dumps(value, default=repr)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def short(text: str | None, width: int = 60) -> str:
    """The first line of a text, cut to ``width`` characters."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def fmt_time(epoch: float | None) -> str:
    """An epoch time as UTC ``YYYY-MM-DD HH:MM:SS`` (``-`` for None)."""
    if epoch is None:
        return "-"
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_age(seconds: float | None) -> str:
    """Seconds as ``4.2s``, ``3m10s``, ``5h02m``, ``2d03h`` (``-`` for None)."""
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO | None = None) -> None:
    """Print rows under headers, columns padded to their widest cell."""
    stream = out or sys.stdout
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        stream.write(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
        )
    stream.flush()


def pairs(items: Iterable[tuple[str, Any]], out: TextIO | None = None) -> None:
    """Print ``name: value`` lines, names aligned."""
    stream = out or sys.stdout
    listed = list(items)
    width = max((len(k) for k, _ in listed), default=0)
    pad = "\n" + " " * (width + 2)
    for k, v in listed:
        stream.write(f"{k.ljust(width)}  {str(v).replace(chr(10), pad)}\n")
    stream.flush()
