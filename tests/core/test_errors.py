"""The error tree of DESIGN §10."""

from __future__ import annotations

import queue

import pytest

import leaseq.errors as errors


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (errors.ConfigurationError, errors.LeaseqError),
        (errors.StoreError, errors.LeaseqError),
        (errors.StoreUnavailable, errors.StoreError),
        (errors.SchemaMismatch, errors.StoreError),
        (errors.KeyExists, errors.LeaseqError),
        (errors.KeyInFlight, errors.LeaseqError),
        (errors.LeaseLost, errors.LeaseqError),
        (errors.MessageNotFound, errors.LeaseqError),
        (errors.Empty, errors.LeaseqError),
        (errors.Empty, queue.Empty),
        (errors.Full, errors.LeaseqError),
        (errors.Full, queue.Full),
        (errors.Closed, errors.LeaseqError),
    ],
)
def test_error_tree(child: type, parent: type) -> None:
    assert issubclass(child, parent)


def test_leaseq_error_is_an_exception() -> None:
    assert issubclass(errors.LeaseqError, Exception)


def test_empty_is_caught_by_queue_empty() -> None:
    with pytest.raises(queue.Empty):
        raise errors.Empty("nothing")
    with pytest.raises(queue.Full):
        raise errors.Full("full")


def test_key_errors_name_queue_and_key_and_what_to_do() -> None:
    exists = errors.KeyExists("jobs", "user-42")
    assert (exists.queue, exists.key) == ("jobs", "user-42")
    assert "jobs" in str(exists) and "user-42" in str(exists) and "if_ready" in str(exists)
    in_flight = errors.KeyInFlight("jobs", "user-42")
    assert (in_flight.queue, in_flight.key) == ("jobs", "user-42")
    assert "user-42" in str(in_flight) and "if_in_flight" in str(in_flight)


def test_lease_lost_carries_id_attempt_and_reason() -> None:
    err = errors.LeaseLost("jobs", "m-1", 3, "claimed_again")
    assert (err.queue, err.message_id, err.attempt, err.reason) == (
        "jobs",
        "m-1",
        3,
        "claimed_again",
    )
    text = str(err)
    assert "jobs" in text and "m-1" in text and "attempt 3" in text and "claimed again" in text


def test_message_not_found_is_a_lookup_error_naming_the_id() -> None:
    err = errors.MessageNotFound("jobs", "m-9")
    assert isinstance(err, LookupError)
    assert err.ident == "m-9" and "m-9" in str(err) and "jobs" in str(err)


def test_configuration_error_is_a_value_error() -> None:
    assert issubclass(errors.ConfigurationError, ValueError)


def test_store_error_keeps_the_engine_error_as_cause() -> None:
    engine = OSError("disk on fire")
    try:
        try:
            raise engine
        except OSError as exc:
            raise errors.StoreUnavailable("cannot reach the store") from exc
    except errors.StoreError as err:
        assert err.__cause__ is engine
