"""exec and worker through a subprocess on a real SQLite file."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, cli_env

SUMMARY_FIELDS = {
    "queue",
    "pid",
    "succeeded",
    "failed",
    "retried",
    "dead_lettered",
    "running",
    "seconds",
    "rate",
}

# A command that appends what it saw (stdin, env) to a JSON-lines file.
RECORD = textwrap.dedent(
    """
    import json, os, sys
    data = sys.stdin.read()
    with open(sys.argv[1], "a") as f:
        f.write(json.dumps({"stdin": data, "key": os.environ["LEASEQ_KEY"],
                            "attempt": os.environ["LEASEQ_ATTEMPT"],
                            "queue": os.environ["LEASEQ_QUEUE"], "id": os.environ["LEASEQ_ID"]})
                + "\\n")
    """
)


def _records(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exec_runs_each_message_with_stdin_and_env(cli: Cli, tmp_path: Path) -> None:
    cli.ok("put", "jobs", '{"n": 1}', "--key", "a")
    cli.ok("put", "jobs", '"two"', "--key", "b")
    out = tmp_path / "seen.jsonl"
    r = cli.ok("--json", "exec", "jobs", "--drain", "--", sys.executable, "-c", RECORD, str(out))
    summary = r.json
    assert set(summary) == SUMMARY_FIELDS
    assert (summary["succeeded"], summary["failed"], summary["dead_lettered"]) == (2, 0, 0)
    seen = sorted(_records(out), key=lambda d: d["key"])
    assert [(d["key"], json.loads(d["stdin"]), d["attempt"], d["queue"]) for d in seen] == [
        ("a", {"n": 1}, "1", "jobs"),
        ("b", "two", "1", "jobs"),
    ]
    assert cli.ok("--json", "stats").json["queues"] == []


def test_exec_failure_is_retried_then_recorded(cli: Cli) -> None:
    cli.ok("put", "jobs", "7", "--key", "bad")
    script = (
        "import sys; print('out-' + sys.stdin.read()); print('err-line', file=sys.stderr); "
        "sys.exit(3)"
    )
    r = cli.ok(
        "--json",
        "exec",
        "jobs",
        "--drain",
        "--max-attempts",
        "2",
        "--",
        sys.executable,
        "-c",
        script,
    )
    summary = r.json
    assert (
        summary["succeeded"],
        summary["failed"],
        summary["retried"],
        summary["dead_lettered"],
    ) == (0, 2, 1, 1)
    # Log lines stay one line each: the error's traceback summary is in the store.
    assert "dead-lettered: CommandFailed" in r.err and "Traceback" not in r.err
    dead = cli.ok("--json", "inspect", "jobs", "bad").json
    assert dead["state"] == "dead" and dead["attempts"] == 2
    err = dead["last_error"]
    assert err.startswith("CommandFailed: command ")
    assert "exited with status 3" in err and sys.executable in err
    assert "stdout tail: 'out-7\\n'" in err and "stderr tail: 'err-line\\n'" in err
    assert any(e["kind"] == "released" for e in dead["history"])
    summary2 = cli.ok("--json", "dead", "jobs", "--summary").json
    assert summary2["by_error"] == {"CommandFailed": 1}


@pytest.mark.parametrize(
    "cmd",
    [["sh", "-c", "exit 127"], ["/nonexistent/leaseq-test-command"]],
    ids=["exit-127", "not-found"],
)
def test_exec_127_goes_straight_to_dead_letters(cli: Cli, cmd: list[str]) -> None:
    cli.ok("put", "jobs", "1", "--key", "k")
    r = cli.ok("--json", "exec", "jobs", "--drain", "--max-attempts", "5", "--", *cmd)
    assert (r.json["dead_lettered"], r.json["retried"]) == (1, 0)
    dead = cli.ok("--json", "inspect", "jobs", "k").json
    assert dead["attempts"] == 1
    assert dead["last_error"].startswith("Reject: ")
    assert "127" in dead["last_error"]


def test_exec_progress_log_lines_when_not_a_terminal(cli: Cli) -> None:
    for i in range(3):
        cli.ok("put", "jobs", str(i))
    r = cli.ok(
        "exec",
        "jobs",
        "--drain",
        "--log-every",
        "0.05",
        "--",
        sys.executable,
        "-c",
        "import time; time.sleep(0.1)",
    )
    lines = [ln for ln in r.err.splitlines() if "exec jobs:" in ln]
    assert lines and all(re.search(r"\d+ done, \d+ dead", ln) for ln in lines)
    assert "\r" not in r.err
    assert r.out.startswith("exec jobs: 3 succeeded, 0 dead-lettered")


def test_exec_usage_errors(cli: Cli) -> None:
    assert "needs a command" in cli.fails("exec", "jobs", "--drain").err
    assert cli.ok("--json", "put", "neg", "--", "-5").json["value"] == -5  # argparse's --
    assert "--concurrency" in cli.fails("exec", "jobs", "--concurrency", "0", "--", "true").err


HANDLERS = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path
    OUT = Path(os.environ.get("LEASEQ_TEST_OUT", "out.jsonl"))

    def handle(value):
        with OUT.open("a") as f:
            f.write(json.dumps({"pid": os.getpid(), "value": value}) + "\\n")
        if value == "boom":
            raise ValueError("boom value")
        return value

    async def ahandle(value):
        return handle(value)

    def slow(value):
        (OUT.parent / f"started-{value}").write_text("1")
        time.sleep(float(os.environ.get("LEASEQ_TEST_SLEEP", "1.5")))
        handle(value)

    NOT_CALLABLE = 3
    """
)


@pytest.fixture
def handlers(tmp_path: Path) -> Path:
    (tmp_path / "myhandlers.py").write_text(HANDLERS)
    return tmp_path / "out.jsonl"


@pytest.mark.parametrize("func", ["handle", "ahandle"])
def test_worker_runs_module_function(cli: Cli, handlers: Path, func: str) -> None:
    cli.ok("put", "tasks", '"a"')
    cli.ok("put", "tasks", '"boom"')
    r = cli.ok(
        "--json",
        "worker",
        f"myhandlers:{func}",
        "--queue",
        "tasks",
        "--drain",
        "--max-attempts",
        "1",
        env={"LEASEQ_TEST_OUT": str(handlers)},
    )
    assert (r.json["succeeded"], r.json["dead_lettered"]) == (1, 1)
    assert sorted(d["value"] for d in _records(handlers)) == ["a", "boom"]
    dead = cli.ok("--json", "dead", "tasks").json["dead"]
    assert dead[0]["last_error"].startswith("ValueError: boom value")


def test_worker_spec_errors(cli: Cli) -> None:
    assert "module:function" in cli.fails("worker", "nocolon").err
    assert "cannot import 'nosuchmodule_xyz'" in cli.fails("worker", "nosuchmodule_xyz:f").err
    (cli.tmp / "myhandlers.py").write_text(HANDLERS)
    assert "has no attribute 'nope'" in cli.fails("worker", "myhandlers:nope").err
    assert "not a function" in cli.fails("worker", "myhandlers:NOT_CALLABLE").err
    (cli.tmp / "broken.py").write_text("raise RuntimeError('half-written')")
    assert "importing 'broken' failed: RuntimeError" in cli.fails("worker", "broken:f").err
    r = cli.fails(
        "--store", "memory://", "worker", "myhandlers:handle", "--processes", "2", store=False
    )
    assert "durable store" in r.err


def _wait_for(path: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_worker_sigterm_finishes_running_job_then_exits_0(cli: Cli, handlers: Path) -> None:
    cli.ok("put", "tasks", '"one"')
    cli.ok("put", "tasks", '"two"')
    env = cli_env({"LEASEQ_TEST_OUT": str(handlers), "LEASEQ_TEST_SLEEP": "1.0"})
    proc = subprocess.Popen(
        cli.argv("--json", "worker", "myhandlers:slow", "--queue", "tasks"),
        cwd=cli.tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(cli.tmp / "started-one")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["succeeded"] == 1
    assert [d["value"] for d in _records(handlers)] == ["one"]  # finished, not cut short
    st = cli.ok("--json", "stats", "tasks").json["queues"][0]
    assert (st["ready"], st["leased"]) == (1, 0)  # "two" never claimed, nothing left held


@pytest.mark.slow
def test_worker_processes_share_the_queue_and_stop_on_sigterm(cli: Cli, handlers: Path) -> None:
    cli.ok("put", "tasks", "--lines", input="".join(f'"v{i}"\n' for i in range(6)))
    env = cli_env({"LEASEQ_TEST_OUT": str(handlers), "LEASEQ_TEST_SLEEP": "0.3"})
    proc = subprocess.Popen(
        cli.argv("--json", "worker", "myhandlers:slow", "--queue", "tasks", "--processes", "2"),
        cwd=cli.tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (handlers.exists() and len(_records(handlers)) >= 6):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    summaries = [json.loads(line) for line in out.splitlines()]
    assert len(summaries) == 2 and len({s["pid"] for s in summaries}) == 2
    assert sum(s["succeeded"] for s in summaries) == 6
    assert len({d["pid"] for d in _records(handlers)}) == 2  # both processes worked


def test_exec_progress_redraws_one_line_on_a_terminal(cli: Cli) -> None:
    import os
    import pty

    cli.ok("put", "jobs", "1")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            cli.argv(
                "exec",
                "jobs",
                "--drain",
                "--",
                sys.executable,
                "-c",
                "import time; time.sleep(0.6)",
            ),
            stdout=subprocess.PIPE,
            stderr=follower,
            env=cli_env(),
            cwd=cli.tmp,
            timeout=60,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    err = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "\r\x1b[K" in err and "exec jobs:" in err  # redrawn in place
    assert b"1 succeeded" in proc.stdout
