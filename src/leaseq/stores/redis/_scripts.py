"""The Lua scripts (``lua/*.lua``), loaded once per server with ``SCRIPT LOAD`` and
called with ``EVALSHA``; a ``NOSCRIPT`` reply (a restarted or flushed server, a
failover) loads them again and retries the call, which is safe because the
server ran nothing."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

__all__ = ["SCRIPTS", "Script"]

_NAMES = ("put", "claim", "claim_key", "renew", "settle", "release", "requeue", "read", "admin")


class Script:
    """One script's text (the shared ``common.lua`` first) and its SHA1."""

    __slots__ = ("name", "sha", "text")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


def _load() -> dict[str, Script]:
    folder = resources.files(__package__).joinpath("lua")
    common = folder.joinpath("common.lua").read_text(encoding="utf-8")
    return {
        name: Script(name, common + "\n" + folder.joinpath(f"{name}.lua").read_text("utf-8"))
        for name in _NAMES
    }


SCRIPTS: dict[str, Script] = _load()


def is_noscript(exc: BaseException) -> bool:
    return type(exc).__name__ == "NoScriptError" or str(exc).startswith("NOSCRIPT")


def evalsha_args(script: Script, keys: list[str], args: list[Any]) -> list[Any]:
    return [script.sha, len(keys), *keys, *args]
