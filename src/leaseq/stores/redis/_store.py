"""The Redis store object (sync, ``redis.Redis``) and its native async primitives
(``redis.asyncio.Redis``): both call the same scripts through ``_ops.Ops``.

``_Primitives`` writes every primitive once as "build a ``Call``, hand it to
``self._exec``": the sync store's ``_exec`` returns the result, the async
one's returns a coroutine, so the two faces cannot drift apart.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from collections.abc import Sequence
from typing import Any

from leaseq._core.model import Lease, Outcome, State
from leaseq._waiting import Notifier
from leaseq.errors import Closed, StoreError, StoreUnavailable
from leaseq.serializers import get_codec
from leaseq.stores.base import PutRequest
from leaseq.stores.redis import _safety
from leaseq.stores.redis._ops import Call, Ops, queue_of_base
from leaseq.stores.redis._scripts import SCRIPTS, is_noscript
from leaseq.stores.redis._watch import Subscriber

__all__ = ["AsyncRedisPrimitives", "RedisStore"]


def _import_redis() -> Any:
    try:
        import redis
    except ModuleNotFoundError as exc:  # pragma: no cover - the extra is missing
        from leaseq.errors import ConfigurationError

        raise ConfigurationError(
            "the redis:// store needs an extra: pip install 'leaseq[redis]'"
        ) from exc
    return redis


def unavailable(url: str, exc: BaseException) -> StoreError:
    """The contract's error for a Redis client exception (the cause is chained)."""
    redis = _import_redis()
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return StoreUnavailable(
            f"cannot reach Redis at {url}: {text}. Start a server (redis-server, or "
            "docker run -p 6379:6379 redis:7) or fix the URL"
        )
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return StoreUnavailable(f"Redis at {url} is a read-only replica: {text}")
    return StoreError(f"Redis at {url} failed: {text}")


class _Primitives:
    """Every Store primitive as one script call; ``_exec`` runs it (sync or async)."""

    _ops: Ops

    def _exec(self, call: Call) -> Any:
        raise NotImplementedError

    def put(self, queue: str, req: PutRequest, *, now: float | None, maxsize: int = 0) -> Any:
        return self._exec(self._ops.put_call([(queue, req)], now, maxsize, single=True))

    def put_many(
        self, queue: str, reqs: Sequence[PutRequest], *, now: float | None, maxsize: int = 0
    ) -> Any:
        return self._exec(self._ops.put_call([(queue, r) for r in reqs], now, maxsize))

    def publish(
        self, items: Sequence[tuple[str, PutRequest]], *, now: float | None, maxsize: int = 0
    ) -> Any:
        return self._exec(self._ops.put_call(list(items), now, maxsize))

    def claim(
        self,
        queue: str,
        *,
        now: float | None,
        lease_timeout: float,
        owner: str | None,
        limit: int = 1,
    ) -> Any:
        return self._exec(self._ops.claim_call(queue, now, lease_timeout, owner, limit))

    def claim_key(
        self, queue: str, key: str, *, now: float | None, lease_timeout: float, owner: str | None
    ) -> Any:
        return self._exec(self._ops.claim_key_call(queue, key, now, lease_timeout, owner))

    def renew(self, queue: str, lease: Lease, *, now: float | None, seconds: float) -> Any:
        return self._exec(self._ops.renew_call(queue, lease, now, seconds))

    def ack(
        self, queue: str, lease: Lease, *, now: float | None, outcome: Outcome | None = None
    ) -> Any:
        return self._exec(self._ops.settle_call(queue, lease, now, dead=False, outcome=outcome))

    def release(
        self,
        queue: str,
        lease: Lease,
        *,
        now: float | None,
        delay: float = 0.0,
        front: bool = False,
        error: str | None = None,
    ) -> Any:
        return self._exec(self._ops.release_call(queue, lease, now, delay, front, error))

    def dead_letter(
        self,
        queue: str,
        lease: Lease,
        *,
        now: float | None,
        error: str | None = None,
        outcome: Outcome | None = None,
    ) -> Any:
        call = self._ops.settle_call(queue, lease, now, dead=True, error=error, outcome=outcome)
        return self._exec(call)

    def requeue_dead(
        self,
        queue: str,
        message_id: str,
        *,
        now: float | None,
        delay: float = 0.0,
        reset_attempts: bool = True,
    ) -> Any:
        return self._exec(self._ops.requeue_call(queue, message_id, now, delay, reset_attempts))

    def get_outcome(self, queue: str, key: str, *, now: float | None) -> Any:
        return self._exec(self._ops.get_outcome_call(queue, key, now))

    def prune_outcomes(self, queue: str, *, before: float) -> Any:
        return self._exec(self._ops.admin_call(queue, "prune_outcomes", before))

    def get_message(self, queue: str, message_id: str, *, now: float | None) -> Any:
        return self._exec(self._ops.get_message_call(queue, message_id, now))

    def peek_key(self, queue: str, key: str, *, now: float | None) -> Any:
        return self._exec(self._ops.peek_key_call(queue, key, now))

    def keys(self, queue: str, state: State, *, now: float | None) -> Any:
        return self._exec(self._ops.keys_call(queue, state, now))

    def count_ready(self, queue: str, *, now: float | None) -> Any:
        return self._exec(self._ops.count_ready_call(queue, now))

    def count_live(self, queue: str, *, now: float | None) -> Any:
        return self._exec(self._ops.count_live_call(queue, now))

    def dead_letters(self, queue: str, *, now: float | None, limit: int | None = None) -> Any:
        if limit is not None and limit <= 0:
            return self._done([])
        return self._exec(self._ops.dead_letters_call(queue, now, limit))

    def stats(self, queue: str, *, now: float | None) -> Any:
        return self._exec(self._ops.stats_call(queue, now))

    def purge(self, queue: str) -> Any:
        return self._exec(self._ops.admin_call(queue, "purge"))

    def prune_dead(self, queue: str, *, before: float) -> Any:
        return self._exec(self._ops.admin_call(queue, "prune_dead", before))

    def next_due(self, queue: str, *, now: float | None, key: str | None = None) -> Any:
        return self._exec(self._ops.next_due_call(queue, now, key))

    def _done(self, value: Any) -> Any:
        return value


def _get_connection_args(pool: Any) -> tuple[str, ...]:
    # redis-py 5.0-5.2 require a command name here; later versions deprecate it.
    param = inspect.signature(pool.get_connection).parameters.get("command_name")
    return ("EVALSHA",) if param is not None and param.default is param.empty else ()


def _queue_names(prefix: str, raw_keys: Any) -> list[str]:
    names: set[str] = set()
    for raw in raw_keys:
        base = raw.decode()[:-2]  # strip ':k' / ':x'
        name = queue_of_base(prefix, base)
        if name is not None:
            names.add(name)
    return sorted(names)


class RedisStore(_Primitives):
    """The ``redis://`` store (see the package docstring for guarantees and limits)."""

    inline = False
    server_clock = True
    serializes = True

    def __init__(
        self,
        url: str,
        client_options: dict[str, Any],
        *,
        prefix: str = "leaseq:",
        durability: str = "normal",
        serializer: Any = None,
        poll_interval: float = 5.0,
    ) -> None:
        redis = _import_redis()
        # Looked up once: every call's except clauses name them.
        self._errors = (redis.RedisError, redis.ResponseError)
        self.url = url
        self.prefix = prefix
        self.durability = durability
        self._raw_url = client_options.pop("url")
        self._client_options = client_options
        self._codec = get_codec(serializer)
        self._client = redis.Redis.from_url(self._raw_url, **client_options)
        self._pool = self._client.connection_pool
        self._conn_args = _get_connection_args(self._pool)
        self.closed = False
        self._lock = threading.Lock()
        self._subscriber = Subscriber(
            lambda: redis.Redis.from_url(self._raw_url, **client_options),
            prefix=prefix,
            origin=f"{os.getpid()}-{id(self):x}",
            changed=self._changed,
            interval=poll_interval,
        )
        self.notifier = Notifier(watch=self._subscriber.set_active)
        self._ops = Ops(prefix, self._codec, self.notifier, self._subscriber.origin)
        try:
            self._strict = _safety.check(self._client, url, durability)
            self._load_scripts()
        except redis.RedisError as exc:
            self._client.close()
            raise unavailable(url, exc) from exc

    def _load_scripts(self) -> None:
        pipe = self._client.pipeline(transaction=False)
        for script in SCRIPTS.values():
            pipe.script_load(script.text)
        pipe.execute()

    def _changed(self, queue: str | None) -> None:
        if self.notifier.waiting:
            self.notifier.changed(queue)

    # -- running calls -------------------------------------------------------------
    def _exec(self, call: Call) -> Any:
        if self.closed:
            raise Closed(f"store {self.url} is closed; open a new queue")
        script = SCRIPTS[call.script]
        args = [script.sha, len(call.keys), *call.keys, *call.args]
        redis_error, response_error = self._errors
        try:
            try:
                reply = self._send(args, call.write)
            except response_error as exc:
                if not is_noscript(exc):
                    raise
                self._client.script_load(script.text)  # the server forgot it: nothing ran
                reply = self._send(args, call.write)
        except redis_error as exc:
            raise unavailable(self.url, exc) from exc
        return call.finish(reply)

    def _evalsha(self, args: list[Any]) -> Any:
        """One EVALSHA on a pooled connection, without ``execute_command``'s wrapper
        (retry closure, metrics, event dispatch: ~40k instructions a call, ~10% of
        a put+get+ack cycle). The store configures no retries, so nothing is lost;
        redis-py's send and read disconnect the connection on any error."""
        pool = self._pool
        conn = pool.get_connection(*self._conn_args)
        try:
            conn.send_command("EVALSHA", *args)
            return conn.read_response()
        finally:
            pool.release(conn)

    def _send(self, args: list[Any], write: bool) -> Any:
        if not (write and self._strict):
            return self._evalsha(args)
        # WAIT/WAITAOF count the writes of their own connection: one pipeline.
        pipe = self._client.pipeline(transaction=False)
        pipe.execute_command("EVALSHA", *args)
        pipe.execute_command(*self._strict)
        reply, acked = pipe.execute()
        _safety.check_acked(self.url, self._strict, acked)
        return reply

    def queues(self) -> list[str]:
        if self.closed:
            raise Closed(f"store {self.url} is closed; open a new queue")
        redis = _import_redis()
        try:
            found = [
                *self._client.scan_iter(match=f"{self.prefix}{{*}}:k", count=1000),
                *self._client.scan_iter(match=f"{self.prefix}{{*}}:x", count=1000),
            ]
        except redis.RedisError as exc:
            raise unavailable(self.url, exc) from exc
        return _queue_names(self.prefix, found)

    def async_primitives(self) -> AsyncRedisPrimitives:
        """Native coroutines over ``redis.asyncio.Redis`` (one client per async queue)."""
        return AsyncRedisPrimitives(self)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._subscriber.close()
        self._client.close()

    def __repr__(self) -> str:
        return f"<RedisStore {self.url} prefix={self.prefix!r}>"


class AsyncRedisPrimitives(_Primitives):
    """The async face's primitives: the same calls, awaited on ``redis.asyncio``."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._ops = store._ops
        self._client_obj: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def _client(self) -> Any:
        """The client of the running event loop. asyncio connections belong to the
        loop that opened them: a queue used under a new loop (a second
        ``asyncio.run``) gets a new client, and the old loop's is dropped."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            import redis.asyncio

            # Many tasks share a few connections: a task waits for one rather than failing.
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self._store._raw_url,
                max_connections=32,
                timeout=None,
                **_async_options(self._store),
            )
            self._client_obj = redis.asyncio.Redis(connection_pool=pool)
            self._loop = loop
        return self._client_obj

    def _exec(self, call: Call) -> Any:
        return self._run(call)

    def _done(self, value: Any) -> Any:
        async def done() -> Any:
            return value

        return done()

    async def _run(self, call: Call) -> Any:
        store = self._store
        if store.closed:
            raise Closed(f"store {store.url} is closed; open a new queue")
        script = SCRIPTS[call.script]
        args = [script.sha, len(call.keys), *call.keys, *call.args]
        redis_error, response_error = store._errors
        try:
            try:
                reply = await self._send(args, call.write)
            except response_error as exc:
                if not is_noscript(exc):
                    raise
                await self._client.script_load(script.text)
                reply = await self._send(args, call.write)
        except redis_error as exc:
            raise unavailable(store.url, exc) from exc
        return call.finish(reply)

    async def _send(self, args: list[Any], write: bool) -> Any:
        strict = self._store._strict
        if not (write and strict):
            return await self._client.execute_command("EVALSHA", *args)
        pipe: Any = self._client.pipeline(transaction=False)
        pipe.execute_command("EVALSHA", *args)
        pipe.execute_command(*strict)
        reply, acked = await pipe.execute()
        _safety.check_acked(self._store.url, strict, acked)
        return reply

    async def queues(self) -> list[str]:
        # SCAN is several round trips: off the event loop, on the sync client.
        return await asyncio.to_thread(self._store.queues)

    async def aclose(self) -> None:
        if self._client_obj is None or self._loop is not asyncio.get_running_loop():
            self._client_obj = self._loop = None  # its loop is gone, and its sockets with it
            return
        client, self._client_obj, self._loop = self._client_obj, None, None
        await client.aclose()
        await client.connection_pool.disconnect()

    def shutdown(self) -> None:
        pass


def _async_options(store: RedisStore) -> dict[str, Any]:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options = dict(store._client_options)
    options["retry"] = Retry(NoBackoff(), 0)
    return options
