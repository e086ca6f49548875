"""Order of delivery (DESIGN §2 and the head rule in ``leaseq._core.rules``)."""

from __future__ import annotations

import pytest

import leaseq

from .helpers import drain, drain_keys


def test_fifo_within_a_priority_at_one_instant(make_queue):
    # The fake clock does not move: every put has the same timestamp, so the
    # order must come from the operation order, not from float time.
    q = make_queue()
    for i in range(20):
        q.put(i)
    assert drain(q) == list(range(20))


def test_fifo_with_an_advancing_clock(make_queue, clock):
    q = make_queue()
    for i in range(10):
        q.put(i)
        clock.advance(0.001)
    assert drain(q) == list(range(10))


def test_higher_priority_put_later_is_delivered_first(make_queue, clock):
    q = make_queue()
    q.put("low", priority=1)
    clock.advance(0.002)
    q.put("high", priority=10)
    assert drain(q) == ["high", "low"]


def test_priorities_then_put_order(make_queue, clock):
    q = make_queue()
    items = [("a", 0), ("b", 5), ("c", -3), ("d", 5), ("e", 0), ("f", 1000), ("g", -1000)]
    for value, priority in items:
        q.put(value, priority=priority)
        clock.advance(0.5)
    assert drain(q) == ["f", "b", "d", "a", "e", "c", "g"]


def test_message_reports_its_priority(make_queue):
    q = make_queue()
    assert q.put("x", priority=7).priority == 7
    assert q.get(block=False).message.priority == 7


@pytest.mark.parametrize("priority", [-1001, 1001])
def test_priority_out_of_range_is_rejected_and_nothing_stored(make_queue, priority):
    q = make_queue()
    with pytest.raises(ValueError):
        q.put("x", priority=priority)
    assert q.stats().total == 0


def test_delayed_message_waits_for_its_due_time(make_queue, clock):
    q = make_queue()
    msg = q.put("later", delay=5)
    assert msg.state is leaseq.State.READY
    assert msg.available_at == clock() + 5
    q.put("now")
    assert drain(q) == ["now"]
    clock.advance(4.999)
    assert drain(q) == []
    clock.advance(0.001)
    assert drain(q) == ["later"]


def test_at_is_an_epoch_time_on_the_queue_clock(make_queue, clock):
    q = make_queue()
    due = clock() + 30
    assert q.put("x", at=due).available_at == due
    clock.advance(29)
    assert drain(q) == []
    clock.advance(1)
    assert drain(q) == ["x"]


def test_at_in_the_past_is_available_now(make_queue, clock):
    q = make_queue()
    q.put("x", at=clock() - 60)
    assert drain(q) == ["x"]


def test_delay_and_at_together_are_a_value_error(make_queue, clock):
    q = make_queue()
    with pytest.raises(ValueError):
        q.put("x", delay=1, at=clock() + 5)
    assert q.stats().total == 0


def test_delayed_messages_join_the_line_at_their_due_time(make_queue, clock):
    q = make_queue()
    q.put("x", delay=5)  # due t+5
    clock.advance(1)
    q.put("y")  # t+1
    clock.advance(5)
    q.put("z")  # t+6
    clock.advance(10)
    assert drain(q) == ["y", "x", "z"]


def test_equal_availability_keeps_operation_order(make_queue, clock):
    q = make_queue()
    q.put("delayed", delay=1)  # due t+1, put first
    clock.advance(1)
    q.put("plain")  # available t+1, put second
    assert drain(q) == ["delayed", "plain"]


def test_release_goes_to_the_back_by_default(make_queue):
    q = make_queue()
    for k in "abc":
        q.put(k, key=k)
    lease = q.get(block=False)
    assert lease.key == "a"
    q.release(lease)
    assert drain_keys(q) == ["b", "c", "a"]


def test_release_front_goes_to_the_head(make_queue):
    q = make_queue()
    for k in "abc":
        q.put(k, key=k)
    q.release(q.get(block=False), front=True)
    assert drain_keys(q) == ["a", "b", "c"]


def test_the_head_is_a_stack_last_released_first(make_queue, clock):
    q = make_queue()
    for k in "abc":
        q.put(k, key=k)
    a = q.get(block=False)
    b = q.get(block=False)
    q.release(a, front=True)
    q.release(b, front=True)  # same instant: the later operation first
    assert drain_keys(q) == ["b", "a", "c"]


def test_the_head_is_a_stack_with_an_advancing_clock(make_queue, clock):
    q = make_queue()
    for k in "abc":
        q.put(k, key=k)
    a = q.get(block=False)
    b = q.get(block=False)
    q.release(b, front=True)
    clock.advance(1)
    q.release(a, front=True)
    assert drain_keys(q) == ["a", "b", "c"]


def test_head_is_within_the_priority(make_queue, clock):
    q = make_queue()
    q.put("a", key="a")
    q.put("b", key="b")
    a = q.get(block=False)
    q.put("x", key="x", priority=5)
    clock.advance(1)
    q.release(a, front=True)
    assert drain_keys(q) == ["x", "a", "b"]


def test_release_with_delay_joins_the_line_at_its_due_time(make_queue, clock):
    q = make_queue()
    q.put("a", key="a")
    q.put("b", key="b")
    lease = q.get(block=False)
    q.release(lease, delay=5)  # due t+5
    clock.advance(1)
    q.put("c", key="c")  # t+1
    assert drain_keys(q) == ["b", "c"]
    clock.advance(4)
    clock.advance(1)
    q.put("d", key="d")  # t+6
    assert drain_keys(q) == ["a", "d"]


def test_delayed_release_is_not_claimable_early(make_queue, clock):
    q = make_queue()
    q.put("a", key="a")
    lease = q.get(block=False)
    q.release(lease, delay=5)
    assert drain(q) == []
    with pytest.raises(leaseq.Empty):
        q.take("a", block=False)
    clock.advance(5)
    assert drain_keys(q) == ["a"]


def test_expired_lease_goes_to_the_head_with_attempts_counted(make_queue, clock):
    q = make_queue(lease_timeout=10)
    for k in "abc":
        q.put(k, key=k)
    first = q.get(block=False)
    assert (first.key, first.attempt) == ("a", 1)
    clock.advance(10)
    again = q.get(block=False)
    assert (again.key, again.attempt) == ("a", 2)
    assert again.message.attempts == 2
    assert again.token != first.token
    q.ack(again)
    assert drain_keys(q) == ["b", "c"]


def test_expiry_joins_the_head_at_its_expiry_time(make_queue, clock):
    # a's lease expires at t+10, after b was released to the front at t+5:
    # a joined the head later, so a comes first.
    q = make_queue()
    for k in "abc":
        q.put(k, key=k)
    a = q.get(block=False, lease_timeout=10)
    b = q.get(block=False, lease_timeout=30)
    clock.advance(5)
    q.release(b, front=True)
    clock.advance(5)
    assert a.expires_at <= clock()
    assert drain_keys(q) == ["a", "b", "c"]


def test_release_after_an_unobserved_expiry_is_ahead_of_it(make_queue, clock):
    # a's lease expired at t+10 without anyone looking; b is released to the
    # front at t+12, so b joined the head after a.
    q = make_queue()
    for k in "abc":
        q.put(k, key=k)
    q.get(block=False, lease_timeout=10)
    b = q.get(block=False, lease_timeout=30)
    clock.advance(12)
    q.release(b, front=True)
    assert drain_keys(q) == ["b", "a", "c"]


def test_expired_lease_keeps_its_priority(make_queue, clock):
    q = make_queue(lease_timeout=10)
    q.put("low", key="low", priority=-1)
    q.put("high", key="high", priority=3)
    q.get(block=False)  # high
    q.put("mid", key="mid", priority=1)
    clock.advance(10)
    assert drain_keys(q) == ["high", "mid", "low"]


def test_a_due_delayed_message_is_ahead_of_a_later_release(make_queue, clock):
    # x fell due at t+5; b is released to the back at t+6: x became available first.
    q = make_queue()
    q.put("b", key="b")
    b = q.get(block=False)
    q.put("x", key="x", delay=5)
    clock.advance(6)
    q.release(b)
    assert drain_keys(q) == ["x", "b"]


def test_a_due_delayed_message_is_ahead_of_a_later_buffered_follow_up(make_queue, clock):
    q = make_queue()
    q.put("b1", key="b")
    b = q.get(block=False)
    q.put("b2", key="b", if_in_flight="buffer")
    q.put("x", key="x", delay=5)
    clock.advance(6)
    q.ack(b)  # the follow-up becomes available now, at t+6
    assert drain_keys(q) == ["x", "b"]


def test_a_delayed_message_keeps_its_priority_when_due(make_queue, clock):
    q = make_queue()
    q.put("urgent", key="urgent", priority=9, delay=5)
    q.put("a", key="a")
    q.put("b", key="b")
    assert q.get(block=False).key == "a"
    clock.advance(5)
    assert drain_keys(q) == ["urgent", "b"]


def test_update_keeps_a_released_message_at_the_head(make_queue):
    q = make_queue()
    for k in "abc":
        q.put(k, key=k)
    q.release(q.take("c", block=False), front=True)
    q.put("c2", key="c")  # if_ready="update": same place, at the head
    assert drain(q) == ["c2", "a", "b"]
