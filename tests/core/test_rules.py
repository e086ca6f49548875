"""The pure decisions of ``leaseq._core.rules`` (DESIGN §2)."""

from __future__ import annotations

import math

import pytest

from leaseq._core import rules
from leaseq._core.model import State
from leaseq._core.rules import PutAction, decide_put
from leaseq.errors import LeaseLost

NOW = 1_700_000_000.0


# --- key policies -----------------------------------------------------------------


@pytest.mark.parametrize("if_ready", sorted(rules.IF_READY))
@pytest.mark.parametrize("if_in_flight", sorted(rules.IF_IN_FLIGHT))
@pytest.mark.parametrize("current", [None, State.DEAD])
def test_absent_or_dead_key_always_inserts(
    current: State | None, if_ready: str, if_in_flight: str
) -> None:
    assert decide_put(current, if_ready, if_in_flight) is PutAction.INSERT


@pytest.mark.parametrize(
    ("if_ready", "action"),
    [
        ("update", PutAction.UPDATE),
        ("replace", PutAction.REPLACE),
        ("keep", PutAction.KEEP),
        ("reject", PutAction.REJECT_READY),
    ],
)
@pytest.mark.parametrize("if_in_flight", sorted(rules.IF_IN_FLIGHT))
def test_ready_key_follows_if_ready_only(
    if_ready: str, action: PutAction, if_in_flight: str
) -> None:
    assert decide_put(State.READY, if_ready, if_in_flight) is action


@pytest.mark.parametrize(
    ("if_in_flight", "action"),
    [
        ("update", PutAction.UPDATE_HELD),
        ("reject", PutAction.REJECT_HELD),
        ("buffer", PutAction.BUFFER),
        ("keep", PutAction.KEEP),
    ],
)
@pytest.mark.parametrize("if_ready", sorted(rules.IF_READY))
def test_leased_key_follows_if_in_flight_only(
    if_in_flight: str, action: PutAction, if_ready: str
) -> None:
    assert decide_put(State.LEASED, if_ready, if_in_flight) is action


def test_policy_names_are_the_documented_ones() -> None:
    assert {"update", "replace", "keep", "reject"} == rules.IF_READY
    assert {"update", "reject", "buffer", "keep"} == rules.IF_IN_FLIGHT


def test_check_policies_accepts_every_documented_pair() -> None:
    for if_ready in rules.IF_READY:
        for if_in_flight in rules.IF_IN_FLIGHT:
            rules.check_policies(if_ready, if_in_flight)


@pytest.mark.parametrize(
    ("if_ready", "if_in_flight"), [("buffer", "update"), ("update", "replace")]
)
def test_check_policies_rejects_unknown_names(if_ready: str, if_in_flight: str) -> None:
    with pytest.raises(ValueError, match="if_"):
        rules.check_policies(if_ready, if_in_flight)


# --- priority ---------------------------------------------------------------------


@pytest.mark.parametrize("priority", [-1000, -1, 0, 1, 1000])
def test_priority_in_range_is_returned(priority: int) -> None:
    assert rules.check_priority(priority) == priority


@pytest.mark.parametrize("priority", [-1001, 1001, 10**9])
def test_priority_out_of_range_is_value_error(priority: int) -> None:
    with pytest.raises(ValueError, match="priority"):
        rules.check_priority(priority)


@pytest.mark.parametrize("priority", [1.0, "1", None, True])
def test_priority_must_be_an_int(priority: object) -> None:
    with pytest.raises(TypeError, match="priority"):
        rules.check_priority(priority)


def test_priority_bounds_constants() -> None:
    assert (rules.MIN_PRIORITY, rules.MAX_PRIORITY) == (-1000, 1000)


# --- durations and availability ------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, 0.0, 1, 2.5])
def test_check_seconds_accepts_finite_non_negative(seconds: float) -> None:
    result = rules.check_seconds("delay", seconds)
    assert result == seconds
    assert type(result) is float


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan, math.inf])
def test_check_seconds_rejects_negative_and_non_finite(seconds: float) -> None:
    with pytest.raises(ValueError, match="delay"):
        rules.check_seconds("delay", seconds)


def test_check_seconds_positive_rejects_zero() -> None:
    with pytest.raises(ValueError, match="lease_timeout"):
        rules.check_seconds("lease_timeout", 0, positive=True)
    assert rules.check_seconds("lease_timeout", 0.5, positive=True) == 0.5


@pytest.mark.parametrize("seconds", ["1", None, True, [1]])
def test_check_seconds_rejects_non_numbers(seconds: object) -> None:
    with pytest.raises(TypeError, match="delay"):
        rules.check_seconds("delay", seconds)


def test_available_at_now_without_delay_or_at() -> None:
    assert rules.available_at(NOW, 0.0, None) == NOW
    assert rules.available_at(NOW, None, None) == NOW


def test_available_at_adds_delay() -> None:
    assert rules.available_at(NOW, 2.5, None) == NOW + 2.5


def test_available_at_uses_at_even_in_the_past() -> None:
    assert rules.available_at(NOW, 0.0, NOW + 7) == NOW + 7
    assert rules.available_at(NOW, None, NOW - 7) == NOW - 7


def test_available_at_rejects_delay_and_at_together() -> None:
    with pytest.raises(ValueError, match="delay"):
        rules.available_at(NOW, 1.0, NOW + 5)


def test_available_at_rejects_negative_delay() -> None:
    with pytest.raises(ValueError):
        rules.available_at(NOW, -1.0, None)


@pytest.mark.parametrize("at", ["tomorrow", True, math.nan])
def test_available_at_rejects_bad_at(at: object) -> None:
    with pytest.raises(TypeError):
        rules.available_at(NOW, 0.0, at)  # type: ignore[arg-type]


# --- expiry, attempts ----------------------------------------------------------------


def test_lease_not_yet_expired_stays_leased() -> None:
    assert rules.logical_state(State.LEASED, NOW + 1, 1, None, NOW) is State.LEASED


def test_lease_expires_exactly_at_its_expiry_time() -> None:
    assert rules.logical_state(State.LEASED, NOW, 1, None, NOW) is State.READY


def test_expired_lease_on_last_attempt_is_dead() -> None:
    assert rules.logical_state(State.LEASED, NOW - 1, 3, 3, NOW) is State.DEAD
    assert rules.logical_state(State.LEASED, NOW - 1, 2, 3, NOW) is State.READY


@pytest.mark.parametrize("state", [State.READY, State.DEAD])
def test_logical_state_only_changes_leases(state: State) -> None:
    assert rules.logical_state(state, None, 5, 1, NOW) is state


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "expected"),
    [
        (1, None, State.READY),
        (100, None, State.READY),
        (1, 2, State.READY),
        (2, 2, State.DEAD),
        (3, 2, State.DEAD),
        (1, 1, State.DEAD),
    ],
)
def test_release_and_expiry_share_the_attempt_rule(
    attempts: int, max_attempts: int | None, expected: State
) -> None:
    assert rules.after_expiry(attempts, max_attempts) is expected
    assert rules.after_release(attempts, max_attempts) is expected


# --- fencing ---------------------------------------------------------------------------


def _check(**overrides: object) -> None:
    args: dict[str, object] = {
        "queue": "jobs",
        "message_id": "m1",
        "attempt": 2,
        "token": "tok",
        "found": True,
        "state": State.LEASED,
        "held_token": "tok",
        "lease_expires_at": NOW + 10,
        "now": NOW,
    }
    args.update(overrides)
    rules.check_lease(**args)  # type: ignore[arg-type]


def _reason(**overrides: object) -> str:
    with pytest.raises(LeaseLost) as info:
        _check(**overrides)
    assert info.value.queue == "jobs"
    assert info.value.message_id == "m1"
    assert info.value.attempt == 2
    return info.value.reason


def test_matching_token_before_expiry_holds() -> None:
    _check()


def test_missing_message_was_acked_or_removed() -> None:
    assert _reason(found=False, state=None, held_token=None) == "acked_or_removed"


def test_expired_lease_is_lost_even_with_matching_token() -> None:
    assert _reason(lease_expires_at=NOW) == "expired"
    assert _reason(lease_expires_at=NOW - 5) == "expired"


def test_other_token_means_claimed_again() -> None:
    assert _reason(held_token="other") == "claimed_again"


def test_ready_message_without_token_was_released() -> None:
    assert _reason(state=State.READY, held_token=None, lease_expires_at=None) == "released"


def test_dead_message_is_reported_dead() -> None:
    assert _reason(state=State.DEAD, held_token=None, lease_expires_at=None) == "dead"
    assert _reason(state=State.DEAD, held_token="tok", lease_expires_at=None) == "dead"
