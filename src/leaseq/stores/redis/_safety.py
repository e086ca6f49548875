"""Checks made at connect: settings under which Redis can lose messages, and what
``durability="strict"`` can use on this server.

* ``maxmemory-policy`` other than ``noeviction``: Redis may evict a queue's keys
  under memory pressure (a message, or the index that finds it, disappears).
* ``appendonly no``: a restart loses everything since the last RDB snapshot.

Each is logged once per server (URL without its options) (``logging``, logger ``leaseq.redis``).
``durability="strict"``: after every write, ``WAITAOF 1 0`` (Redis >= 7.2: the
write is fsynced to the local AOF before the call returns), else ``WAIT`` for
the connected replicas; on Redis < 7.2 without replicas nothing can be waited
for, so strict relies on ``appendfsync always`` and warns when it is not set.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from leaseq.errors import ConfigurationError, StoreUnavailable

__all__ = ["check", "check_acked"]

log = logging.getLogger("leaseq.redis")
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()
WAIT_TIMEOUT_MS = 5000


def _warn_once(url: str, what: str, text: str) -> None:
    server = url.split("?", 1)[0]  # once per server, whatever the prefix
    with _warned_lock:
        if (server, what) in _warned:
            return
        _warned.add((server, what))
    log.warning("%s: %s", server, text)


def _config(client: Any, name: str) -> str | None:
    import redis

    try:
        got = client.config_get(name)
    except redis.ResponseError:  # managed services often forbid CONFIG
        return None
    value = got.get(name.encode()) or got.get(name)
    return value.decode() if isinstance(value, bytes) else value


def _version(info: dict[str, Any]) -> tuple[int, ...]:
    raw = info.get("redis_version", "0")
    raw = raw.decode() if isinstance(raw, bytes) else str(raw)
    return tuple(int(p) for p in raw.split(".")[:3] if p.isdigit())


def check(client: Any, url: str, durability: str) -> tuple[Any, ...] | None:
    """Warn about lossy settings; return the command strict durability runs after
    each write (None: nothing to wait for)."""
    if durability not in ("normal", "strict"):
        raise ConfigurationError(f"durability must be 'normal' or 'strict', got {durability!r}")
    policy = _config(client, "maxmemory-policy")
    aof = _config(client, "appendonly")
    if policy is None or aof is None:
        _warn_once(
            url,
            "config",
            "cannot read CONFIG (maxmemory-policy, appendonly); make "
            "sure the server uses noeviction and AOF, or messages can be lost",
        )
    if policy is not None and policy != "noeviction":
        _warn_once(
            url,
            "policy",
            f"maxmemory-policy is {policy!r}: under memory pressure "
            "Redis may evict queue keys and lose messages; set it to noeviction",
        )
    if aof == "no":
        _warn_once(
            url,
            "aof",
            "appendonly is off: a restart loses the messages written "
            "since the last snapshot; set appendonly yes",
        )
    if durability != "strict":
        return None
    info = client.info("server")
    replicas = int(client.info("replication").get("connected_slaves", 0))
    if _version(info) >= (7, 2):
        return ("WAITAOF", 1 if aof != "no" else 0, replicas, WAIT_TIMEOUT_MS)
    if replicas:
        return ("WAIT", replicas, WAIT_TIMEOUT_MS)
    if _config(client, "appendfsync") != "always" or aof != "yes":
        _warn_once(
            url,
            "strict",
            "durability='strict' needs Redis >= 7.2 (WAITAOF), a "
            "replica (WAIT), or appendonly yes + appendfsync always; this server "
            "has none of them, so a write can be lost in a crash right after it",
        )
    return None


def check_acked(url: str, command: tuple[Any, ...], acked: Any) -> None:
    """Raise StoreUnavailable when WAIT/WAITAOF timed out short of its target."""
    if command[0] == "WAIT":
        ok = int(acked) >= int(command[1])
    else:
        ok = int(acked[0]) >= int(command[1]) and int(acked[1]) >= int(command[2])
    if not ok:
        raise StoreUnavailable(
            f"Redis at {url}: the write was applied but not confirmed durable within "
            f"{WAIT_TIMEOUT_MS} ms ({command[0]} returned {acked!r})"
        )
