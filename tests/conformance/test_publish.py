"""Pub/sub: publish writes one copy into each subscriber queue, all or none."""

from __future__ import annotations

import pytest

import leaseq


def test_publish_copies_into_every_subscriber_queue(make_queue):
    events = make_queue(name="orders", subscribers=["billing", "audit"])
    copies = events.publish({"order": 7}, key="o-7")
    assert [m.key for m in copies] == ["o-7", "o-7"]
    for sub in ("billing", "audit"):
        q = make_queue(name=f"orders.{sub}")
        lease = q.get(block=False)
        assert lease.value == {"order": 7} and lease.key == "o-7"
        q.ack(lease)
    assert events.qsize() == 0  # the publishing queue itself holds nothing


def test_subscriber_queues_are_ordinary_queues(make_queue):
    events = make_queue(name="ev", subscribers=["a"])
    events.publish(1, priority=0)
    events.publish(2, priority=5)
    a = make_queue(name="ev.a")
    assert [a.get(block=False).value, a.get(block=False).value] == [2, 1]


def test_publish_is_all_or_none(make_queue):
    events = make_queue(name="ev", subscribers=["billing", "audit"])
    audit = make_queue(name="ev.audit")
    audit.put("already", key="k")
    with pytest.raises(leaseq.KeyExists):
        events.publish("new", key="k", if_ready="reject")
    billing = make_queue(name="ev.billing")
    assert billing.peek("k") is None  # the first copy was not written either
    assert audit.peek("k").value == "already"


def test_publish_respects_maxsize_all_or_none(make_queue):
    events = make_queue(name="ev", subscribers=["a", "b"], maxsize=1, overflow="reject")
    b = make_queue(name="ev.b")
    b.put("filler")
    with pytest.raises(leaseq.Full):
        events.publish("x")
    assert make_queue(name="ev.a").qsize() == 0


def test_publish_delayed_copies(make_queue, clock):
    events = make_queue(name="ev", subscribers=["a"])
    events.publish("later", delay=10)
    a = make_queue(name="ev.a")
    with pytest.raises(leaseq.Empty):
        a.get(block=False)
    clock.advance(10)
    assert a.get(block=False).value == "later"


def test_publish_without_subscribers_is_a_configuration_error(make_queue):
    q = make_queue(name="ev")
    with pytest.raises(leaseq.ConfigurationError):
        q.publish(1)


@pytest.mark.parametrize("subs", [["a", "a"], [""], "ab", [3]])
def test_bad_subscribers_are_rejected(store_url, subs):
    with pytest.raises((ValueError, TypeError)):
        leaseq.Queue(store_url, name="ev", subscribers=subs)


async def test_async_publish(make_async_queue):
    events = make_async_queue(name="ev", subscribers=["x", "y"])
    await events.publish("hello", key="h")
    for sub in ("x", "y"):
        q = make_async_queue(name=f"ev.{sub}")
        lease = await q.get(block=False)
        assert lease.value == "hello"
