"""Run ``python -m leaseq`` in a subprocess against a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *[p for p in [env.get("PYTHONPATH")] if p]])
    env.pop("LEASEQ_STORE", None)
    env.update(extra or {})
    return env


class Cli:
    """``cli("put", "q", "1")`` runs leaseq with this test's store."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'leaseq.db'}"

    def argv(self, *args: str, store: bool = True) -> list[str]:
        return [sys.executable, "-m", "leaseq", *(["--store", self.url] if store else []), *args]

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        store: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> Result:
        proc = subprocess.run(
            self.argv(*args, store=store),
            input=input,
            capture_output=True,
            text=True,
            env=cli_env(env),
            cwd=self.tmp,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, **kw: Any) -> Result:
        r = self(*args, **kw)
        assert r.code == 0, (r.code, r.out, r.err)
        return r

    def fails(self, *args: str, code: int = 1, **kw: Any) -> Result:
        r = self(*args, **kw)
        assert r.code == code, (r.code, r.out, r.err)
        assert "Traceback" not in r.err
        if code == 1:
            assert len(r.err.strip().splitlines()) == 1, r.err
        return r


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def api(cli: Cli):
    """Set-up through the Python API on the same file (fewer slow subprocesses);
    the command under test still runs through ``cli``."""
    import leaseq

    opened: dict[str, leaseq.Queue] = {}

    def queue(name: str) -> leaseq.Queue:
        if name not in opened:
            opened[name] = leaseq.Queue(cli.url, name=name)
        return opened[name]

    yield queue
    for q in opened.values():
        q.close()
