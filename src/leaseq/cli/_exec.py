"""``leaseq exec``: any command becomes a worker.

For each message the command runs WITHOUT a shell, with the message value as
JSON on stdin (bytes values verbatim) and ``LEASEQ_QUEUE``, ``LEASEQ_ID``,
``LEASEQ_KEY``, ``LEASEQ_ATTEMPT`` in its environment. Exit 0 acks. Exit 127
(or a command that cannot be started: not found, not executable) goes straight
to the dead letters, since retrying cannot help. Any other exit status raises
``CommandFailed``, which the worker retries with backoff and finally dead-letters;
its text (recorded as the message's error) names the command, the exit status
and the tails of stdout and stderr.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Sequence
from typing import Any

__all__ = ["TAIL", "CommandFailed", "CommandHandler"]

#: How many characters of stdout and stderr an error keeps (the tails).
TAIL = 1000


class CommandFailed(Exception):
    """The command exited with a non-zero status (retried, then dead-lettered)."""


def _tail(data: bytes | None) -> str:
    text = (data or b"").decode("utf-8", errors="replace")
    return text if len(text) <= TAIL else "…" + text[-TAIL:]


def describe(cmd: Sequence[str], code: int, out: bytes | None, err: bytes | None) -> str:
    """The recorded error: command, exit status, tails of stdout and stderr."""
    return (
        f"command {shlex.join(cmd)} exited with status {code}; "
        f"stdout tail: {_tail(out)!r}; stderr tail: {_tail(err)!r}"
    )


def stdin_bytes(value: Any) -> bytes:
    """What the command reads: the value as JSON, bytes as they are."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return json.dumps(value).encode("utf-8")


class CommandHandler:
    """A worker handler (``pass_lease=True``) that runs one command per message."""

    def __init__(self, queue: str, cmd: Sequence[str]) -> None:
        self.queue = queue
        self.cmd = list(cmd)
        self._env = dict(os.environ)

    def __call__(self, lease: Any) -> None:
        import leaseq

        env = dict(self._env)
        env["LEASEQ_QUEUE"] = self.queue
        env["LEASEQ_ID"] = str(lease.message.id)
        env["LEASEQ_KEY"] = str(lease.key)
        env["LEASEQ_ATTEMPT"] = str(lease.attempt)
        try:
            proc = subprocess.run(
                self.cmd, input=stdin_bytes(lease.value), capture_output=True, env=env
            )
        except OSError as exc:  # not found, not executable: no shell turns these into 127
            raise leaseq.Reject(
                f"command {shlex.join(self.cmd)} could not start: {exc.strerror or exc}"
                " (exit status 127)"
            ) from None
        if proc.returncode == 0:
            return
        text = describe(self.cmd, proc.returncode, proc.stdout, proc.stderr)
        if proc.returncode == 127:
            raise leaseq.Reject(text)
        raise CommandFailed(text)
