"""redis:// specifics: URLs, script reloading, errors, safety warnings, layout."""

from __future__ import annotations

import logging
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

import leaseq
from leaseq.errors import ConfigurationError, StoreUnavailable
from leaseq.stores import open_store
from leaseq.stores.redis import parse_url
from leaseq.stores.redis._ops import queue_base, queue_of_base

from .service import client, delete_prefix


# -- URLs ---------------------------------------------------------------------------
def test_url_options_are_split_from_redis_py_options():
    masked, options, ours = parse_url(
        urlsplit("redis://u:secret@h:6380/2?prefix=app:&socket_timeout=3&durability=strict")
    )
    assert ours == {"prefix": "app:", "durability": "strict"}
    assert "secret" not in masked and "***" in masked
    assert options["url"] == "redis://u:secret@h:6380/2?socket_timeout=3"


def test_keyword_options_win_and_unknown_ones_are_refused():
    _, _, ours = parse_url(urlsplit("redis://h/0?prefix=a:"), prefix="b:")
    assert ours["prefix"] == "b:"
    with pytest.raises(TypeError, match="takes no option"):
        parse_url(urlsplit("redis://h/0"), nonsense=1)


@pytest.mark.parametrize(
    "url",
    ["redis://h/0?prefix=a{b}", "unix://", "redis://h/0?poll_interval=0"],
)
def test_bad_urls_are_configuration_errors(url):
    with pytest.raises(ConfigurationError):
        parse_url(urlsplit(url))


def test_rediss_and_unix_urls_are_accepted():
    assert parse_url(urlsplit("rediss://h:6380/0"))[1]["url"].startswith("rediss://")
    assert parse_url(urlsplit("unix:///tmp/r.sock?db=1"))[1]["url"] == "unix:///tmp/r.sock?db=1"


@pytest.mark.parametrize("name", ["plain", "with{brace}", "a}b{c", "50%", "%7D"])
def test_queue_names_round_trip_through_the_hash_tag(name):
    base = queue_base("p:", name)
    assert base.count("{") == 1 and base.count("}") == 1  # one tag: one cluster slot
    assert queue_of_base("p:", base) == name


def test_a_unix_socket_url_reaches_the_server(own_server, tmp_path):
    sock = tmp_path / "r.sock"
    own_server("--unixsocket", str(sock))
    q = leaseq.Queue(f"unix://{sock}?db=0&prefix=u:")
    q.put("via socket")
    assert q.get(block=False).value == "via socket"
    q.close()


# -- errors ---------------------------------------------------------------------------
def test_pooled_connections_are_asked_for_as_each_redis_py_wants():
    from leaseq.stores.redis._store import _get_connection_args

    class Old:  # redis-py 5.0-5.2: the command name is required
        def get_connection(self, command_name, *keys, **options): ...

    class New:  # later: no arguments (passing one is deprecated)
        def get_connection(self, command_name=None, *keys, **options): ...

    assert _get_connection_args(Old()) == ("EVALSHA",)
    assert _get_connection_args(New()) == ()


def test_a_closed_port_is_store_unavailable_with_a_hint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(StoreUnavailable, match="redis-server"):
            open_store(f"redis://127.0.0.1:{port}/0")


def test_a_server_gone_later_is_store_unavailable(own_server):
    server = own_server()
    q = leaseq.Queue(server.url)
    q.put(1)
    server.proc.kill()
    server.proc.wait()
    server.proc = None
    with pytest.raises(StoreUnavailable):
        q.put(2)
    q.close()


# -- scripts ---------------------------------------------------------------------------
def test_noscript_reloads_the_scripts_and_nothing_is_lost(own_server):
    server = own_server()
    q = leaseq.Queue(server.url)
    q.put("a")
    assert server.cli("SCRIPT", "FLUSH") == "OK"  # a private server: nobody else is hit
    q.put("b")  # NOSCRIPT -> SCRIPT LOAD -> EVALSHA again
    assert [q.get(block=False).value for _ in range(2)] == ["a", "b"]
    assert q.qsize() == 0
    q.close()


async def test_the_async_primitives_reload_scripts_too(own_server):
    server = own_server()
    q = leaseq.AsyncQueue(server.url)
    await q.put("a")
    server.cli("SCRIPT", "FLUSH")
    await q.put("b")
    assert [(await q.get(block=False)).value for _ in range(2)] == ["a", "b"]
    await q.close()


# -- safety ---------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    # Warnings are once per server per process; private servers may reuse a port.
    from leaseq.stores.redis import _safety

    monkeypatch.setattr(_safety, "_warned", set())


def test_lossy_settings_are_warned_once(own_server, caplog):
    server = own_server("--appendonly", "no", "--maxmemory-policy", "allkeys-lru")
    with caplog.at_level(logging.WARNING, logger="leaseq.redis"):
        for _ in range(2):
            open_store(server.url).close()
    texts = [r.getMessage() for r in caplog.records if r.name == "leaseq.redis"]
    assert sum("appendonly is off" in t for t in texts) == 1
    assert sum("allkeys-lru" in t for t in texts) == 1


def test_safe_settings_are_not_warned(own_server, caplog):
    server = own_server("--appendfsync", "always")
    with caplog.at_level(logging.WARNING, logger="leaseq.redis"):
        store = open_store(server.url + "?durability=strict")
        store.close()
    assert [r for r in caplog.records if r.name == "leaseq.redis"] == []


def test_strict_without_a_way_to_wait_is_warned_on_old_servers(own_server, caplog):
    server = own_server()  # appendfsync everysec
    version = server.cli("INFO", "server")
    with caplog.at_level(logging.WARNING, logger="leaseq.redis"):
        store = open_store(server.url, durability="strict")
    q = leaseq.Queue(store)
    q.put("x")
    assert q.get(block=False).value == "x"
    q.close()
    store.close()
    warned = any("strict" in r.getMessage() for r in caplog.records)
    old = tuple(int(p) for p in version.split("redis_version:")[1].split()[0].split(".")[:2])
    assert warned == (old < (7, 2))  # >= 7.2 uses WAITAOF instead


def test_unknown_durability_is_refused(redis_url):
    with pytest.raises(ConfigurationError):
        open_store(redis_url, durability="paranoid")


# -- layout and clocks ------------------------------------------------------------------
def test_every_key_has_the_prefix_and_the_queue_tag(redis_url):
    prefix = redis_url.split("prefix=")[1]
    q = leaseq.Queue(redis_url, name="jobs{1}")
    q.put("x", key="k", delay=5)
    q.put("y")
    q.get(block=False)
    c = client()
    try:
        keys = [k.decode() for k in c.scan_iter(match=f"{prefix}*")]
        assert keys and all(k.startswith(queue_base(prefix, "jobs{1}")) for k in keys)
        assert q.store.queues() == ["jobs{1}"]
    finally:
        c.close()
    q.close()


def test_purge_and_prune_leave_no_message_keys(redis_url):
    prefix = redis_url.split("prefix=")[1]
    q = leaseq.Queue(redis_url, max_attempts=1)
    for i in range(5):
        q.put(i)
    q.dead_letter(q.get(block=False))
    assert q.store.purge(q.name) == 5
    c = client()
    try:
        left = sorted(k.decode()[len(prefix) :] for k in c.scan_iter(match=f"{prefix}*"))
    finally:
        c.close()
    assert left == ["{default}:s"]  # only the counter: ids and tokens never repeat
    q.close()


def test_the_server_clock_decides_without_an_explicit_clock(redis_url):
    c = client()
    try:
        secs, micros = c.time()
    finally:
        c.close()
    server_now = secs + micros / 1e6
    q = leaseq.Queue(redis_url)
    msg = q.put("x")
    assert abs(msg.created_at - server_now) < 5
    lease = q.get(block=False, lease_timeout=60)
    assert lease.expires_at == pytest.approx(lease.message.created_at + 60, abs=5)
    q.ack(lease)
    q.close()


def test_a_blocked_get_wakes_on_a_put_from_another_store_object(redis_url):
    consumer = leaseq.Queue(redis_url)
    producer = leaseq.Queue(redis_url)  # a second store object: wakes via pub/sub
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(consumer.get(timeout=10).value))
    t.start()
    time.sleep(0.2)  # let it block and subscribe (a real cross-connection wake-up)
    start = time.monotonic()
    producer.put("hello")
    t.join(10)
    assert got == ["hello"]
    assert time.monotonic() - start < 0.5  # the pub/sub hint, not the fallback poll
    consumer.close()
    producer.close()


def _until(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_the_subscription_outlives_a_wait(redis_url):
    # A consumer that blocks again soon after a wake-up keeps its subscription:
    # no new thread, connection and SUBSCRIBE handshake per message.
    consumer = leaseq.Queue(redis_url)
    producer = leaseq.Queue(redis_url)
    sub = consumer.store._subscriber
    threads = set()
    got: list[object] = []
    for i in range(3):
        t = threading.Thread(target=lambda: got.append(consumer.get(timeout=10).value))
        t.start()
        _until(lambda: consumer.store.notifier.waiting == 1 and sub.subscribed.is_set())
        threads.add(sub._thread)
        producer.put(i)
        t.join(10)
        assert got == list(range(i + 1))
        time.sleep(0.5)  # idle longer than the listener's 0.2 s tick, shorter than LINGER
    assert len(threads) == 1 and sub._thread in threads and sub._thread.is_alive()
    consumer.close()
    assert sub._thread is None or not sub._thread.is_alive()  # close ends it at once
    producer.close()


def test_keys_of_other_prefixes_are_untouched(redis_url):
    c = client()
    other = redis_url.split("prefix=")[1] + "other:"
    try:
        c.set(f"{other}x", "keep")
        q = leaseq.Queue(redis_url)
        q.put(1)
        q.store.purge(q.name)
        assert c.get(f"{other}x") == b"keep"
        q.close()
    finally:
        delete_prefix(c, other)
        c.close()


def test_strict_waits_for_a_connected_replica(own_server):
    primary = own_server()
    replica = own_server("--replicaof", "127.0.0.1", str(primary.port))
    deadline = time.monotonic() + 10
    while "master_link_status:up" not in replica.cli("INFO", "replication"):
        assert time.monotonic() < deadline, "the replica did not sync"
        time.sleep(0.05)
    store = open_store(primary.url, durability="strict")
    assert store._strict[0] in ("WAIT", "WAITAOF")  # 7.0: WAIT 1; >= 7.2: WAITAOF
    q = leaseq.Queue(store, name="strict")
    q.put("durable", key="d")
    lease = q.get(block=False)
    q.ack(lease)
    q.close()
    store.close()
    assert replica.cli("EXISTS", "leaseq:{strict}:s") == "1"  # the writes reached it


async def test_the_async_face_uses_native_primitives(redis_url):
    q = leaseq.AsyncQueue(redis_url)
    assert type(q._aio).__name__ == "AsyncRedisPrimitives"
    await q.put("x")
    lease = await q.get(timeout=1)
    await q.ack(lease)
    aio = q.store.async_primitives()
    assert await aio.queues() == []  # nothing left, live or dead
    await aio.aclose()
    await q.close()


def test_an_async_queue_survives_a_second_event_loop(redis_url):
    import asyncio

    q = leaseq.AsyncQueue(redis_url)
    asyncio.run(q.put("first loop"))
    lease = asyncio.run(q.get(timeout=1))  # a new loop: a new client, no stale sockets
    assert lease.value == "first loop"
    asyncio.run(q.ack(lease))
    asyncio.run(q.close())


class _FakeServer:
    """Answers the CONFIG and INFO questions ``_safety.check`` asks (no server)."""

    def __init__(self, version: str, appendonly: str, replicas: int = 0) -> None:
        self._config = {"maxmemory-policy": "noeviction", "appendonly": appendonly}
        self._info = {
            "server": {"redis_version": version},
            "replication": {"connected_slaves": replicas},
        }

    def config_get(self, name: str) -> dict[str, str]:
        return {name: self._config.get(name, "no")}

    def info(self, section: str) -> dict[str, object]:
        return self._info[section]


def test_strict_on_redis_7_2_waits_with_waitaof_for_the_local_aof():
    from leaseq.stores.redis import _safety

    command = _safety.check(_FakeServer("7.2.4", "yes"), "redis://fake", "strict")
    assert command == ("WAITAOF", 1, 0, _safety.WAIT_TIMEOUT_MS)
    with_replica = _safety.check(_FakeServer("7.4.0", "yes", 2), "redis://fake", "strict")
    assert with_replica is not None and with_replica[:3] == ("WAITAOF", 1, 2)
    _safety.check_acked("redis://fake", command, [1, 0])  # fsynced locally: confirmed
    with pytest.raises(leaseq.StoreUnavailable, match="not confirmed durable"):
        _safety.check_acked("redis://fake", command, [0, 0])  # timed out short of it
    with pytest.raises(leaseq.StoreUnavailable):
        _safety.check_acked("redis://fake", with_replica, [1, 1])  # one replica of two
