"""Process bodies for the fault tests (importable by ``spawn`` children)."""

from __future__ import annotations

import os
import random
import time

import leaseq


def hold_one(url: str, ready_path: str) -> None:
    """Lease one message, say so, then hang until killed (SIGKILL mid-lease)."""
    q = leaseq.Queue(url, lease_timeout=1.0)
    lease = q.get(timeout=10)
    with open(ready_path, "w") as f:
        f.write(lease.key)
    time.sleep(60)


def consume_randomly(url: str, seed: int, out_path: str, total: int) -> None:
    """Take messages until every key is acked; abandon ~1 in 5 leases (no ack, no release)."""
    rng = random.Random(seed)
    q = leaseq.Queue(url, lease_timeout=0.5)
    acked = []
    try:
        while True:
            if q.stats().total == 0:
                break
            try:
                lease = q.get(timeout=0.5)
            except leaseq.Empty:
                continue
            if rng.random() < 0.2:
                continue  # abandoned: the lease expires and someone else gets it
            try:
                q.ack(lease)
            except leaseq.LeaseLost:
                continue  # expired while we slept; another process will ack it
            acked.append(lease.key)
    finally:
        with open(out_path, "w") as f:
            f.write("\n".join(acked))
        q.close()
    os._exit(0)
