"""``redis://`` — the store for many machines on Redis (sorted sets, hashes, Lua).

URLs: ``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS),
``unix:///path/to/redis.sock?db=0``. Options, in the URL query or as keywords
(keywords win): ``prefix`` (default ``"leaseq:"``: every key starts with it, so
many users share one server), ``durability`` (``"normal"`` or ``"strict"``,
see below), ``serializer`` (as for ``sqlite://``), ``poll_interval`` (seconds
between fallback rechecks of every waiter while waiting, default 5). Other query options
(``socket_timeout``, ``ssl_cert_reqs``...) go to redis-py. Needs the extra
``leaseq[redis]`` (redis-py >= 5).

How the rules become Redis data (``lua/common.lua`` describes the keys): a
queue's keys share one hash tag ``{queue}``, so a queue lives on one Cluster
slot. Every primitive is ONE Lua script call (``EVALSHA``; reloaded on
``NOSCRIPT``), so it is atomic and a crash leaves it done or not done; never a
pop written in one round trip and its lease in another. Delivery order is one
ready sorted set whose score packs the priority (bounded to [-1000, 1000]), the
band (head before line) and a per-queue ``INCR`` sequence (the head counts
down: a stack; the line counts up: FIFO). Delayed messages wait in a second
sorted set and leases in a third, scored by due time and expiry; every script
first applies the timers that are due, in time order, at most 1000 per call
(lazy and bounded: under a flood of more than 1000 expiries at once, the
overflow is applied by the next calls, so order among them may differ from
``memory://``). Fencing tokens come from the same ``INCR``: a lease holds its
message while the token matches and the server's time (``TIME``; or the queue's
explicit clock) is before its expiry. Wake-ups: scripts ``PUBLISH`` a hint; one
subscriber connection per store runs only while someone waits, checked with a
PING every second, plus a jittered fallback poll (``_watch``). A claim or
renew in another process does not publish: a waiter there learns of a lease
shortened by ``renew`` at its next wake-up (at most ``poll_interval`` later).

Guarantees per setting (details in ``docs/stores/redis.md``):

* ``appendonly yes`` + ``appendfsync everysec`` (the usual): an acknowledged
  write survives a Redis process crash except for the last second; a
  graceful restart loses nothing.
* ``appendfsync always``, or ``durability="strict"`` on Redis >= 7.2
  (``WAITAOF``) or with replicas (``WAIT``): an acknowledged write is on disk
  (or on the replicas) before the call returns.
* ``appendonly no``, or any ``maxmemory-policy`` but ``noeviction``: messages
  can be lost; the store logs one warning at connect.

Limits: ``publish`` across queues touches several hash tags, which Redis
Cluster refuses (``CROSSSLOT``) unless the queues' tags map to one slot;
``queues()`` uses ``SCAN``; ``keys``, ``stats``, ``purge`` read every
message of the queue inside one script (the server is busy meanwhile); a
write whose connection drops after sending is reported as ``StoreUnavailable``
and not retried (it may or may not have been applied). Queue names may contain
any character (braces are escaped inside the hash tag).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode

from leaseq.errors import ConfigurationError

__all__ = ["RedisStore", "open_redis", "parse_url"]

_OURS = ("prefix", "durability", "serializer", "poll_interval")


def parse_url(parts: SplitResult, **options: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Split a URL into (masked URL, redis-py options with ``url``, leaseq options)."""
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours: dict[str, Any] = {k: v for k, v in query if k in _OURS}
    rest = [(k, v) for k, v in query if k not in _OURS]
    for name, value in options.items():
        if name not in _OURS:
            raise TypeError(f"redis:// takes no option {name!r}; use one of {', '.join(_OURS)}")
        ours[name] = value
    if "poll_interval" in ours:
        try:
            ours["poll_interval"] = float(ours["poll_interval"])
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"poll_interval must be seconds: {ours['poll_interval']!r}"
            ) from None
        if not ours["poll_interval"] > 0:
            raise ConfigurationError("poll_interval must be > 0")
    prefix = ours.get("prefix", "leaseq:")
    if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
        raise ConfigurationError(f"prefix must be a string without braces, got {prefix!r}")
    if parts.scheme == "unix" and not parts.path:
        raise ConfigurationError("unix:// URLs need a socket path: unix:///path/to/redis.sock")
    # Built by hand: urlunsplit drops the '//' of unix:///path.
    raw = f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{urlencode(rest)}" if rest else "")
    masked_netloc = parts.netloc
    if parts.password is not None:
        masked_netloc = masked_netloc.replace(f":{parts.password}@", ":***@")
    masked = f"{parts.scheme}://{masked_netloc}{parts.path}"
    masked += f"?{parts.query}" if parts.query else ""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No silent retries: a script resent after a dropped connection could apply twice.
    client = {"url": raw, "retry": Retry(NoBackoff(), 0), "socket_connect_timeout": 5}
    return masked, client, ours


def open_redis(parts: SplitResult, **options: Any) -> RedisStore:
    """Open ``redis://``, ``rediss://`` and ``unix://`` URLs (see the module docstring)."""
    masked, client, ours = parse_url(parts, **options)
    return RedisStore(masked, client, **ours)


from leaseq.stores.redis._store import RedisStore  # noqa: E402  (after parse_url: cycle-free)
