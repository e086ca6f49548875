"""leaseq's main job on the embedded default store (SQLite): hand each piece of work
to exactly one holder at a time, retry failures, and keep what cannot be done.

Run with ``make demo``. Four worker threads share one SQLite file; one job always
fails and ends as a dead letter after three attempts; a duplicate put is ignored
by key; an urgent job jumps the line.
"""

from __future__ import annotations

import collections
import tempfile
import threading
from pathlib import Path

import leaseq


def main() -> None:
    path = Path(tempfile.mkdtemp(prefix="leaseq-demo-")) / "jobs.db"
    url = f"sqlite:///{path}"
    with leaseq.Queue(url, name="emails", lease_timeout=10, max_attempts=3) as q:
        for n in range(1, 21):
            q.put({"to": f"user{n}@example.com"}, key=f"user-{n}")
        q.put({"to": "user1@example.com"}, key="user-1", if_ready="keep")  # a duplicate: kept once
        q.put({"to": "ceo@example.com"}, key="ceo", priority=10)  # urgent: first in line
        print(f"queued {q.stats().ready} jobs in {url}")

        done: dict[str, str] = {}
        tries: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()

        def worker(name: str) -> None:
            # Each thread opens its own queue object on the same file, as processes would.
            with leaseq.Queue(url, name="emails", lease_timeout=10, max_attempts=3) as mine:
                while True:
                    try:
                        with mine.lease(timeout=0.5) as job:
                            with lock:
                                tries[job.key] += 1
                            if job.key == "user-13":
                                raise RuntimeError("mailbox does not exist")
                            with lock:
                                assert job.key not in done, "delivered twice!"
                                done[job.key] = name
                    except leaseq.Empty:
                        return
                    except RuntimeError:
                        continue  # released with the error; retried until max_attempts

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        per_worker = collections.Counter(done.values())
        print(
            f"sent {len(done)} emails exactly once: "
            + ", ".join(f"{w}={n}" for w, n in sorted(per_worker.items()))
        )
        for dead in q.dead_letters():
            print(
                f"dead letter {dead.key}: {dead.attempts} attempts, reason "
                f"{dead.dead_reason}, last error {dead.last_error!r}"
            )
        stats = q.stats()
        print(f"left: ready={stats.ready} leased={stats.leased} dead={stats.dead}")
        assert len(done) == 20 and stats.dead == 1 and tries["user-13"] == 3


if __name__ == "__main__":
    main()
