"""``leaseq exec`` beside a shell loop: the issue-9 acceptance figure.

Both sides run the EXTERNAL ``true`` binary (``/usr/bin/true``, or whatever
``command -v true`` finds outside the shell's builtins): bash's builtin
``true`` costs no process at all, so it would compare leaseq against nothing.

* shell: ``bash -c 'for i in $(seq N); do /usr/bin/true; done'`` (N processes);
* leaseq: N messages already in a fresh ``sqlite://`` file, then
  ``python -m leaseq exec jobs --drain --quiet -- /usr/bin/true``, timed from
  start to exit, interpreter start-up and the final drain check included.

The ratio is leaseq's rate over the shell's (target >= 0.5). Rounds interleave
the two; the table shows medians. Noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def true_binary() -> str:
    """The external ``true`` (never the shell builtin)."""
    for candidate in ("/usr/bin/true", "/bin/true"):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("true")
    if found is None:
        raise SystemExit("no external `true` binary found")
    return found


def shell_loop(n: int, true: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", f"for i in $(seq {n}); do {true}; done"], check=True)
    return time.perf_counter() - t0


def leaseq_exec(n: int, true: str, concurrency: int) -> float:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory(prefix="leaseq-bench-cli-") as tmp:
        url = f"sqlite:///{tmp}/jobs.db"
        fill = (
            "import leaseq, sys; q = leaseq.Queue(sys.argv[1], name='jobs'); "
            "q.put_many(list(range(int(sys.argv[2])))); q.close()"
        )
        subprocess.run([sys.executable, "-c", fill, url, str(n)], check=True, env=env)
        argv = [
            sys.executable,
            "-m",
            "leaseq",
            "--store",
            url,
            "exec",
            "jobs",
            "--drain",
            "--quiet",
            "--concurrency",
            str(concurrency),
            "--",
            true,
        ]
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0


def run(args: argparse.Namespace) -> None:
    n = 200 if getattr(args, "quick", False) else 1000
    rounds = max(1, getattr(args, "rounds", 3))
    true = true_binary()
    times: dict[str, list[float]] = {"shell loop": [], "leaseq exec": [], "leaseq exec -c2": []}
    for _ in range(rounds):
        times["shell loop"].append(shell_loop(n, true))
        times["leaseq exec"].append(leaseq_exec(n, true, 1))
        times["leaseq exec -c2"].append(leaseq_exec(n, true, 2))
    shell = statistics.median(times["shell loop"])
    print(f"{n} runs of {true}, median of {rounds} rounds (cores: {os.cpu_count()})")
    print(f"{'contender':<18}{'seconds':>10}{'per second':>12}{'vs shell':>10}")
    for name, got in times.items():
        secs = statistics.median(got)
        print(f"{name:<18}{secs:>10.2f}{n / secs:>12.0f}{shell / secs:>10.2f}")
    ratio = shell / statistics.median(times["leaseq exec"])
    print(
        f"ratio (leaseq exec, concurrency 1) = {ratio:.2f} (target >= 0.5): "
        f"{'met' if ratio >= 0.5 else 'NOT met'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args())
