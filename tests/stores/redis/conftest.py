"""Fixtures for the redis:// store tests: the shared server with a fresh prefix per
test, and private ``redis-server`` processes for tests that restart or break one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .service import redis_url_for_test


@pytest.fixture
def redis_url(request: Any) -> str:
    return redis_url_for_test(request)


def _free_port(start: int = 6390) -> int:
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a private redis-server")


class OwnServer:
    """A private redis-server (AOF on, in a temp dir) that a test may restart or break."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.port = _free_port()
        self.dir = workdir
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.dir), "--appendonly", "yes", "--save", ""]
        args += list(self.extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.02)
        else:
            raise RuntimeError("private redis-server did not start")
        self.cli("PING")  # AOF loaded: answers PONG, not LOADING

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: a graceful shutdown that flushes the AOF
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str) -> str:
        deadline = time.monotonic() + 10
        while True:
            out = subprocess.run(
                ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True
            ).stdout.strip()
            if not out.startswith("LOADING") or time.monotonic() > deadline:
                return out
            time.sleep(0.05)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Any]:
    """A factory: ``own_server(*extra_args)`` starts a private server, stopped after the test."""
    if shutil.which("redis-server") is None:
        from .service import _unavailable

        _unavailable("redis-server is not installed; install it to run this test")
    started: list[OwnServer] = []

    def make(*extra: str) -> OwnServer:
        server = OwnServer(tmp_path / f"redis{len(started)}", *extra)
        server.dir.mkdir()
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        if server.proc is not None:
            server.proc.kill()
            server.proc.wait(10)
