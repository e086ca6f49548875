"""``MemoryStore.pop_next``: a claim and its ack in one step (the task runner's path)."""

from __future__ import annotations

from leaseq._core.model import State
from leaseq.stores.base import PutRequest
from leaseq.stores.memory import MemoryStore

Q = "q"


def test_pop_next_follows_delivery_order_and_forgets_the_message() -> None:
    s = MemoryStore()
    for value, priority in (("low", -1), ("a", 0), ("high", 5), ("b", 0)):
        s.put(Q, PutRequest(value, priority=priority), now=0.0)
    taken = [s.pop_next(Q, now=0.0) for _ in range(4)]
    assert taken == ["high", "a", "b", "low"]
    assert s.pop_next(Q, now=0.0) is None
    assert s.count_live(Q, now=0.0) == 0 and s.count_ready(Q, now=0.0) == 0


def test_pop_next_skips_delayed_messages_until_due() -> None:
    s = MemoryStore()
    s.put(Q, PutRequest("later", key="k", delay=10.0), now=0.0)
    assert s.pop_next(Q, now=5.0) is None
    assert s.pop_next(Q, now=10.0) == "later"
    assert s.peek_key(Q, "k", now=10.0) is None
    assert s.next_due(Q, now=10.0) is None


def test_a_popped_key_can_be_put_again_and_keys_stay_consistent() -> None:
    s = MemoryStore()
    s.put(Q, PutRequest("one", key="k"), now=0.0)
    s.put(Q, PutRequest("two", key="j"), now=0.0)
    assert s.pop_next(Q, now=0.0) == "one"
    assert s.keys(Q, State.READY, now=0.0) == ["j"]
    s.put(Q, PutRequest("again", key="k", delay=1.0), now=0.0)
    assert s.claim_key(Q, "k", now=0.0, lease_timeout=5, owner=None) is None  # delayed
    assert s.pop_next(Q, now=2.0) == "two"
    assert s.pop_next(Q, now=2.0) == "again"


def test_pop_next_on_an_unknown_queue_is_empty() -> None:
    assert MemoryStore().pop_next("nothing", now=0.0) is None
