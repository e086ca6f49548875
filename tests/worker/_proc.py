"""A worker process for the crash and signal tests: ``python _proc.py URL MODE LOG``.

Every handler start and finish is appended to LOG (one line, flushed), so the
test can tell what ran even when this process is SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import leaseq

url, mode, log_path = sys.argv[1:4]
lease_timeout = float(os.environ.get("LEASEQ_TEST_LEASE_TIMEOUT", "1"))


def log(line: str) -> None:
    with open(log_path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


class KillingQueue(leaseq.Queue):
    """Dies right before or right after the ack that records the result."""

    def ack(self, lease, **kwargs):  # type: ignore[no-untyped-def]
        if mode == "idem_kill_before_ack":
            os.kill(os.getpid(), signal.SIGKILL)
        super().ack(lease, **kwargs)
        if mode == "idem_kill_after_ack":
            os.kill(os.getpid(), signal.SIGKILL)


queue_cls = KillingQueue if mode.startswith("idem_kill") else leaseq.Queue
if mode == "work_async":
    q = leaseq.AsyncQueue(url, name="jobs", max_attempts=3, lease_timeout=lease_timeout)
else:
    q = queue_cls(url, name="jobs", max_attempts=3, lease_timeout=lease_timeout)


def fail_slow(lease: leaseq.Lease) -> None:
    log(f"start {lease.key} {lease.attempt}")
    time.sleep(0.3)
    raise RuntimeError("always fails")


def work(lease: leaseq.Lease) -> str:
    log(f"start {lease.key} {lease.attempt}")
    time.sleep(float(os.environ.get("LEASEQ_TEST_WORK", "0.05")))
    log(f"done {lease.key}")
    return f"result-{lease.key}"


async def work_async(lease: leaseq.Lease) -> str:
    import asyncio

    log(f"start {lease.key} {lease.attempt}")
    await asyncio.sleep(float(os.environ.get("LEASEQ_TEST_WORK", "0.05")))
    log(f"done {lease.key}")
    return f"result-{lease.key}"


handler = {"fail_slow": fail_slow, "work_async": work_async}.get(mode, work)
worker = leaseq.Worker(
    q,
    handler,
    pass_lease=True,
    concurrency=int(os.environ.get("LEASEQ_TEST_CONCURRENCY", "1")),
    retry=leaseq.Retry(max_attempts=3, backoff=0),
    idempotent=mode.startswith("idem"),
    poll_interval=0.05,
    shutdown_timeout=10,
)
log("ready")
worker.run()
log("exited")
if isinstance(q, leaseq.AsyncQueue):
    import asyncio

    asyncio.run(q.close())
else:
    q.close()
