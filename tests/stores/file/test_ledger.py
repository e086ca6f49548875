"""The ``file://`` store's results ledger, batches and buffered follow-ups, through the
Store protocol with a fake clock (crash behaviour: ``test_crashes``)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from leaseq._core.model import Outcome, State
from leaseq.errors import Full, KeyExists, LeaseLost
from leaseq.stores.base import PutRequest
from leaseq.stores.file import FileStore, open_file

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    s = open_file(urlsplit(f"file://{tmp_path}"))
    yield s
    s.close()


def claim_one(store: FileStore, queue: str = "q", now: float = T0, timeout: float = 10.0):
    [lease] = store.claim(queue, now=now, lease_timeout=timeout, owner="w")
    return lease


def ok(key: str, value: object, expires: float | None = None) -> Outcome:
    return Outcome(key, "succeeded", value, None, T0, expires)


# -- the results ledger -------------------------------------------------------------------
def test_ack_with_an_outcome_records_it_and_removes_the_message(store):
    store.put("q", PutRequest("job", "k"), now=T0)
    store.ack("q", claim_one(store), now=T0, outcome=ok("k", {"r": [1, 2]}))
    assert store.get_outcome("q", "k", now=T0) == ok("k", {"r": [1, 2]})
    assert store.count_live("q", now=T0) == 0
    assert store.get_outcome("other", "k", now=T0) is None  # per queue


def test_a_newer_outcome_replaces_the_older_one_of_its_key(store):
    for value in ("first", "second"):
        store.put("q", PutRequest(value, "k"), now=T0)
        store.ack("q", claim_one(store), now=T0, outcome=ok("k", value))
    assert store.get_outcome("q", "k", now=T0).value == "second"  # type: ignore[union-attr]
    assert len(os.listdir(store._core.qdir("q").results)) == 1


def test_dead_letter_with_an_outcome_records_it_with_the_death(store):
    store.put("q", PutRequest("job"), now=T0)  # keyless message, outcome under a key
    lease = claim_one(store)
    failed = Outcome("job-1", "failed", None, "boom", T0)
    dead = store.dead_letter("q", lease, now=T0, error="boom", outcome=failed)
    assert dead.state is State.DEAD and dead.last_error == "boom"
    assert store.get_outcome("q", "job-1", now=T0) == failed


def test_a_lost_lease_records_no_outcome(store):
    store.put("q", PutRequest("job", "k"), now=T0)
    lease = claim_one(store, timeout=5)
    with pytest.raises(LeaseLost):
        store.ack("q", lease, now=T0 + 5, outcome=ok("k", 1))
    assert store.get_outcome("q", "k", now=T0) is None


def test_an_outcome_the_serializer_cannot_hold_changes_nothing(store):
    store.put("q", PutRequest("job", "k"), now=T0)
    lease = claim_one(store)
    with pytest.raises(TypeError):
        store.ack("q", lease, now=T0, outcome=ok("k", object()))
    assert store.get_outcome("q", "k", now=T0) is None
    store.ack("q", lease, now=T0)  # the lease still holds


def test_outcomes_expire_and_prune_removes_only_the_expired(store):
    for key, expires in (("a", T0 + 10), ("b", T0 + 20), ("c", None)):
        store.put("q", PutRequest(key, key), now=T0)
        store.ack("q", claim_one(store), now=T0, outcome=ok(key, key, expires))
    assert store.get_outcome("q", "a", now=T0 + 10) is None  # expires_at <= now
    assert store.get_outcome("q", "a", now=T0 + 9.5) is not None
    assert store.prune_outcomes("q", before=T0 + 15) == 1
    assert store.get_outcome("q", "a", now=T0) is None
    assert store.get_outcome("q", "b", now=T0) is not None
    assert store.purge("q") == 0  # purge leaves the ledger alone
    assert store.get_outcome("q", "c", now=T0 + 1e6) is not None


def test_a_torn_outcome_file_reads_as_absent_and_is_pruned(store):
    store.put("q", PutRequest("job", "k"), now=T0)
    store.ack("q", claim_one(store), now=T0, outcome=ok("k", "v"))
    results = store._core.qdir("q").results
    [name] = os.listdir(results)
    data = Path(results, name).read_bytes()
    Path(results, name).write_bytes(data[:-3])
    assert store.get_outcome("q", "k", now=T0) is None
    assert store.prune_outcomes("q", before=T0) == 0
    assert os.listdir(results) == []


# -- buffered follow-ups of a message that dies ---------------------------------------------
def buffered(store: FileStore, max_attempts: int | None = 1):
    store.put("q", PutRequest("v1", "k", max_attempts=max_attempts), now=T0)
    lease = claim_one(store)
    store.put("q", PutRequest("v2", "k", if_in_flight="buffer"), now=T0 + 1)
    return lease


def test_dead_letter_turns_the_buffered_follow_up_into_a_ready_message(store):
    lease = buffered(store)
    store.dead_letter("q", lease, now=T0 + 2, error="bad")
    msg = store.peek_key("q", "k", now=T0 + 2)
    assert msg is not None and (msg.value, msg.state) == ("v2", State.READY)
    assert claim_one(store, now=T0 + 2).value == "v2"
    assert [m.value for m in store.dead_letters("q", now=T0 + 2)] == ["v1"]


def test_a_release_on_the_last_attempt_keeps_the_follow_up(store):
    lease = buffered(store)
    dead = store.release("q", lease, now=T0 + 2)
    assert dead.state is State.DEAD and dead.value == "v1"
    assert claim_one(store, now=T0 + 2).value == "v2"


def test_an_expiry_on_the_last_attempt_keeps_the_follow_up(store):
    buffered(store)
    later = T0 + 60  # the lease (10 s) expired on its only attempt
    msg = store.peek_key("q", "k", now=later)
    assert msg is not None and (msg.value, msg.attempts) == ("v2", 0)
    assert claim_one(store, now=later).value == "v2"
    assert len(store.dead_letters("q", now=later)) == 1


def test_an_expiry_on_the_last_attempt_found_by_a_claim_keeps_the_follow_up(store):
    buffered(store)
    assert claim_one(store, now=T0 + 60).value == "v2"


# -- batches: put_many and publish, all or none ---------------------------------------------
def test_put_many_refused_midway_stores_nothing(store):
    store.put("q", PutRequest("old", "k"), now=T0)
    reqs = [PutRequest("a"), PutRequest("b", "k2"), PutRequest("c", "k", if_ready="reject")]
    with pytest.raises(KeyExists):
        store.put_many("q", reqs, now=T0)
    assert store.count_live("q", now=T0) == 1
    assert store.peek_key("q", "k2", now=T0) is None
    assert os.listdir(store._core.journal) == []


def test_put_many_applies_repeated_keys_in_order(store):
    reqs = [PutRequest("a", "k"), PutRequest("b", "k"), PutRequest("c", "k", if_ready="keep")]
    out = store.put_many("q", reqs, now=T0)
    assert [m.value for m in out] == ["a", "b", "b"]
    assert out[0].id == out[1].id == out[2].id
    assert claim_one(store).value == "b"
    assert store.count_live("q", now=T0) == 1


def test_put_many_replace_of_a_key_it_inserted_leaves_one_message(store):
    store.put("q", PutRequest("old", "k"), now=T0)
    reqs = [PutRequest("a", "k", if_ready="replace"), PutRequest("b", "k", if_ready="replace")]
    store.put_many("q", reqs, now=T0)
    assert store.count_live("q", now=T0) == 1
    assert claim_one(store).value == "b"


def test_put_many_updates_a_held_message_and_buffers(store):
    store.put("q", PutRequest("v1", "h"), now=T0)
    store.put("q", PutRequest("w1", "b"), now=T0)
    held = [claim_one(store), claim_one(store)]
    out = store.put_many(
        "q", [PutRequest("v2", "h"), PutRequest("w2", "b", if_in_flight="buffer")], now=T0
    )
    assert [m.value for m in out] == ["v2", "w2"]
    for lease in held:
        store.release("q", lease, now=T0)
    assert sorted(le.value for le in store.claim("q", now=T0, lease_timeout=5, owner=None,
                                                 limit=5)) == ["v2", "w2"]  # fmt: skip


def test_publish_puts_one_copy_into_each_queue(store):
    out = store.publish([("a", PutRequest("v", "k")), ("b", PutRequest("v"))], now=T0)
    assert [m.value for m in out] == ["v", "v"] and out[0].key == "k"
    assert claim_one(store, "a").value == "v"
    assert claim_one(store, "b").value == "v"
    assert os.listdir(store._core.journal) == []


def test_publish_refused_by_one_queue_puts_nothing_anywhere(store):
    store.put("b", PutRequest("x"), now=T0)
    items = [("a", PutRequest("v")), ("b", PutRequest("v")), ("c", PutRequest("v"))]
    with pytest.raises(Full):
        store.publish(items, now=T0, maxsize=1)
    assert [store.count_live(q, now=T0) for q in "abc"] == [0, 1, 0]
    assert store.publish(items[:1] + items[2:], now=T0, maxsize=1)
    assert [store.count_live(q, now=T0) for q in "abc"] == [1, 1, 1]


def test_publish_with_a_value_it_cannot_serialize_writes_nothing(store):
    with pytest.raises(TypeError):
        store.publish([("a", PutRequest("v")), ("b", PutRequest(object()))], now=T0)
    assert store.count_live("a", now=T0) == 0
