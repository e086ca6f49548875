"""The postgresql:// store's own rules: URL, schema versions, errors, outcomes, publish."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

import leaseq
from leaseq._core.model import Outcome
from leaseq.errors import ConfigurationError, SchemaMismatch, StoreUnavailable
from leaseq.stores import open_store
from leaseq.stores.base import PutRequest
from leaseq.stores.postgres import parse_url


def test_url_options_are_split_from_libpq_ones() -> None:
    cfg = parse_url(
        urlsplit("postgres://bob:secret@db:6543/jobs?schema=work&sslmode=disable&poll=0.5")
    )
    assert cfg.schema == "work"
    assert cfg.poll == 0.5
    assert cfg.conninfo == "postgresql://bob:secret@db:6543/jobs?sslmode=disable"
    assert "secret" not in cfg.url and "***" in cfg.url
    assert cfg.channel == "leaseq_work"
    assert "search_path=work" in cfg.connect_kwargs()["options"]


def test_default_schema_and_keywords_win() -> None:
    assert parse_url(urlsplit("postgresql://h/db")).schema == "leaseq"
    cfg = parse_url(urlsplit("postgresql://h/db?schema=a"), schema="b", migrate=False)
    assert (cfg.schema, cfg.migrate) == ("b", False)


@pytest.mark.parametrize("schema", ["a-b", "1abc", "x;drop", "a" * 51, ""])
def test_bad_schema_names_are_refused(schema: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_url(urlsplit(f"postgresql://h/db?schema={schema}"))


def test_unknown_keyword_and_bad_values() -> None:
    with pytest.raises(TypeError):
        parse_url(urlsplit("postgresql://h/db"), colour="red")
    with pytest.raises(ConfigurationError):
        parse_url(urlsplit("postgresql://h/db?migrate=perhaps"))
    with pytest.raises(ConfigurationError):
        parse_url(urlsplit("postgresql://h/db?synchronous_commit=sometimes"))


def test_closed_port_is_store_unavailable_with_how_to_start() -> None:
    with pytest.raises(StoreUnavailable) as info:
        leaseq.Queue("postgresql://root@127.0.0.1:1/test?connect_timeout=2")
    assert "start" in str(info.value).lower()
    assert info.value.__cause__ is not None


def test_schema_is_created_when_the_store_opens_with_a_version(pg_url: str, admin) -> None:
    schema = pg_url.split("schema=")[1].split("&")[0]
    assert admin.execute("SELECT to_regnamespace(%s)", (schema,)).fetchone() == (None,)
    store = open_store(pg_url)
    try:
        assert store.schema_version() == 1
        assert store.migrate() == 1  # idempotent
    finally:
        store.close()


def test_migrate_false_refuses_an_empty_schema_until_migrate(pg_url: str) -> None:
    store = open_store(pg_url, migrate=False)
    try:
        with pytest.raises(SchemaMismatch, match="migrate"):
            store.put("q", PutRequest("v"), now=None)
        assert store.migrate() == 1
        store.put("q", PutRequest("v"), now=None)
        assert store.count_live("q", now=None) == 1
    finally:
        store.close()


def test_a_newer_schema_is_refused_and_left_alone(pg_url: str, admin) -> None:
    store = open_store(pg_url)
    store.close()
    schema = pg_url.split("schema=")[1].split("&")[0]
    admin.execute(f'UPDATE "{schema}".leaseq_version SET version = 99')
    with pytest.raises(SchemaMismatch, match="newer"):
        open_store(pg_url)
    got = admin.execute(f'SELECT version FROM "{schema}".leaseq_version').fetchone()
    assert got == (99,)


def test_server_clock_when_no_clock_is_given(pg_url: str) -> None:
    import time

    with leaseq.Queue(pg_url) as q:
        msg = q.put("v", delay=30)
        assert abs(msg.created_at - time.time()) < 5  # the server's clock, roughly ours
        assert msg.available_at == pytest.approx(msg.created_at + 30)
        assert q.qsize() == 0
        assert q.stats().delayed == 1


def test_ack_records_outcome_in_the_same_step(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        store.put("q", PutRequest({"n": 1}, key="k"), now=100.0)
        lease = store.claim("q", now=100.0, lease_timeout=10, owner=None)[0]
        store.ack("q", lease, now=101.0, outcome=Outcome("k", "succeeded", [1, 2], None, 101.0))
        got = store.get_outcome("q", "k", now=102.0)
        assert got is not None and got.value == [1, 2] and got.succeeded
        assert store.count_live("q", now=102.0) == 0
        # A second outcome of the key replaces the first; dead_letter records too.
        store.put("q", PutRequest(2, key="k"), now=103.0)
        lease = store.claim("q", now=103.0, lease_timeout=10, owner=None)[0]
        store.dead_letter(
            "q",
            lease,
            now=104.0,
            error="boom",
            outcome=Outcome("k", "failed", None, "boom", 104.0, 200.0),
        )
        got = store.get_outcome("q", "k", now=105.0)
        assert got is not None and got.status == "failed" and got.error == "boom"
        assert store.get_outcome("q", "k", now=200.0) is None  # expired
        assert store.purge("q") == 1  # the dead letter; the ledger stays
        assert store.get_outcome("q", "k", now=105.0) is not None
        assert store.prune_outcomes("q", before=200.0) == 1
        assert store.get_outcome("q", "k", now=105.0) is None
    finally:
        store.close()


def test_a_lost_lease_records_no_outcome(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        store.put("q", PutRequest(1, key="k"), now=100.0)
        lease = store.claim("q", now=100.0, lease_timeout=10, owner=None)[0]
        with pytest.raises(leaseq.LeaseLost):
            store.ack("q", lease, now=111.0, outcome=Outcome("k", "succeeded", 1))
        assert store.get_outcome("q", "k", now=111.0) is None
    finally:
        store.close()


def test_publish_is_all_or_none_across_queues(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        store.put("b", PutRequest(0, key="taken"), now=1.0)
        items = [
            ("a", PutRequest(1, key="x")),
            ("b", PutRequest(2, key="taken", if_ready="reject")),
        ]
        with pytest.raises(leaseq.KeyExists):
            store.publish(items, now=2.0)
        assert store.count_live("a", now=2.0) == 0
        msgs = store.publish([("a", PutRequest(1)), ("b", PutRequest(2))], now=3.0)
        assert [m.value for m in msgs] == [1, 2]
        assert store.count_live("a", now=3.0) == 1 and store.count_live("b", now=3.0) == 2
        with pytest.raises(leaseq.Full):
            store.publish([("a", PutRequest(3)), ("c", PutRequest(4))], now=4.0, maxsize=1)
        assert store.count_live("c", now=4.0) == 0
    finally:
        store.close()


def test_dead_letters_live_out_of_the_hot_table(pg_url: str, admin) -> None:
    with leaseq.Queue(pg_url, max_attempts=1) as q:
        q.put("v", key="k")
        q.release(q.get())
        assert q.dead_letters()[0].dead_reason == "max_attempts"
    schema = pg_url.split("schema=")[1].split("&")[0]
    hot = admin.execute(f'SELECT count(*) FROM "{schema}".leaseq_messages').fetchone()
    dead = admin.execute(f'SELECT count(*) FROM "{schema}".leaseq_dead').fetchone()
    assert (hot, dead) == ((0,), (1,))


def test_put_inside_the_callers_transaction(pg_url: str) -> None:
    import psycopg

    from tests.conformance._postgres import base_url

    with leaseq.Queue(pg_url) as q, psycopg.connect(base_url()) as conn:
        with conn.transaction():
            q.put("kept", key="a", connection=conn)
            assert q.peek("a") is None  # not visible before the caller commits
        assert q.peek("a") is not None
        with pytest.raises(RuntimeError), conn.transaction():
            q.put("dropped", key="b", connection=conn)
            raise RuntimeError("the caller's own writes failed")
        assert q.peek("b") is None
        assert q.get(timeout=5).value == "kept"


async def test_async_put_inside_the_callers_transaction(pg_url: str) -> None:
    import psycopg

    from tests.conformance._postgres import base_url

    q = leaseq.AsyncQueue(pg_url)
    try:
        async with await psycopg.AsyncConnection.connect(base_url()) as conn:
            async with conn.transaction():
                await q.put("kept", key="a", connection=conn)
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await q.put("dropped", key="b", connection=conn)
                    raise RuntimeError("rolled back")
        assert await q.peek("a") is not None
        assert await q.peek("b") is None
    finally:
        await q.close()


def test_other_stores_refuse_a_connection() -> None:
    with leaseq.Queue("memory://") as q, pytest.raises(ConfigurationError, match="connection"):
        q.put("x", connection=object())
