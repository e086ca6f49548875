"""Worker processes for the multi-process tests: ``python -m tests.stores.file._workers``.

Every worker appends one line per event to its own output file with a single
``write`` on an ``O_APPEND`` descriptor, so a SIGKILL can cut a record off only
between records, never inside one.

* ``produce URL PREFIX N OUT``: put ``PREFIX-i`` for i < N; write ``pushed VALUE``
  after each put returned.
* ``consume URL OUT STOP``: get+ack until the queue is empty and the STOP file
  exists; write ``claim VALUE`` after each get and ``ack VALUE`` after each ack.
* ``femto DIR NODE PREFIX N OUT``: FemtoQueue pushes, writing ``ID VALUE`` lines.
"""

from __future__ import annotations

import os
import sys

import leaseq


def _out(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def produce(url: str, prefix: str, n: int, out: str) -> None:
    fd = _out(out)
    with leaseq.Queue(url) as q:
        for i in range(n):
            value = f"{prefix}-{i}"
            q.put(value)
            os.write(fd, f"pushed {value}\n".encode())


def consume(url: str, out: str, stop: str) -> None:
    fd = _out(out)
    with leaseq.Queue(url, lease_timeout=5) as q:
        while True:
            try:
                lease = q.get(timeout=0.05)
            except leaseq.Empty:
                if os.path.exists(stop):
                    return
                continue
            os.write(fd, f"claim {lease.value}\n".encode())
            q.ack(lease)
            os.write(fd, f"ack {lease.value}\n".encode())


def femto(data_dir: str, node: str, prefix: str, n: int, out: str) -> None:
    from leaseq.compat.femtoqueue import FemtoQueue

    fd = _out(out)
    q = FemtoQueue(data_dir, node)
    for i in range(n):
        value = f"{prefix}-{i}"
        tid = q.push(value.encode())
        os.write(fd, f"{tid} {value}\n".encode())
    q.close()


def main(argv: list[str]) -> None:
    cmd, *args = argv
    if cmd == "produce":
        produce(args[0], args[1], int(args[2]), args[3])
    elif cmd == "consume":
        consume(args[0], args[1], args[2])
    elif cmd == "femto":
        femto(args[0], args[1], args[2], int(args[3]), args[4])
    else:
        raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
