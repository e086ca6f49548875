"""The frozen data model (DESIGN §2, §4)."""

from __future__ import annotations

import dataclasses

import pytest

from leaseq._core.model import HISTORY_LIMIT, Event, Lease, Message, QueueStats, State


def _message(**overrides: object) -> Message:
    fields: dict[str, object] = {
        "id": "m1",
        "key": "k",
        "value": {"a": 1},
        "priority": 0,
        "state": State.READY,
        "attempts": 0,
        "created_at": 1.0,
        "available_at": 1.0,
        "lease_expires_at": None,
        "leased_by": None,
        "last_error": None,
    }
    fields.update(overrides)
    return Message(**fields)  # type: ignore[arg-type]


def test_state_is_a_str_enum_with_documented_values() -> None:
    assert [s.value for s in State] == ["ready", "leased", "dead"]
    assert State.READY == "ready"
    assert isinstance(State.LEASED, str)
    assert str(State.DEAD) == "dead"
    assert State("leased") is State.LEASED


def test_message_has_the_documented_fields() -> None:
    documented = [
        "id",
        "key",
        "value",
        "priority",
        "state",
        "attempts",
        "created_at",
        "available_at",
        "lease_expires_at",
        "leased_by",
        "last_error",
        "history",
    ]
    assert list(Message._fields[: len(documented)]) == documented


def test_message_is_frozen() -> None:
    msg = _message()
    with pytest.raises(AttributeError):
        msg.value = 2  # type: ignore[misc]
    assert msg.history == ()


def test_lease_has_the_documented_fields_and_id() -> None:
    msg = _message(state=State.LEASED, attempts=1, lease_expires_at=31.0)
    lease = Lease(key="k", value={"a": 1}, token="t", attempt=1, expires_at=31.0, message=msg)
    assert Lease._fields == ("key", "value", "token", "attempt", "expires_at", "message")
    assert lease.id == "m1"
    with pytest.raises(AttributeError):
        lease.token = "other"  # type: ignore[misc]


def test_event_defaults_detail_to_none() -> None:
    event = Event(at=1.0, kind="put")
    assert event.detail is None
    assert HISTORY_LIMIT > 0


def test_queue_stats_is_frozen_with_per_owner_counts() -> None:
    stats = QueueStats(
        ready=1,
        delayed=2,
        leased=3,
        dead=4,
        total=10,
        oldest_ready_age=None,
        oldest_leased_age=None,
    )
    assert stats.by_owner == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.ready = 5  # type: ignore[misc]
    other = QueueStats(1, 2, 3, 4, 10, None, None)
    assert other.by_owner is not stats.by_owner  # no shared mutable default


def test_dead_reason_comes_from_the_last_dead_event() -> None:
    history = (
        Event(1.0, "released", "boom"),
        Event(2.0, "dead", "max_attempts"),
        Event(3.0, "requeued"),
        Event(4.0, "dead", "bad payload"),
    )
    assert _message(state=State.DEAD, history=history).dead_reason == "bad payload"
    assert _message(state=State.DEAD).dead_reason is None
    assert _message(state=State.READY, history=history).dead_reason is None
