"""put / get / ack / release / dead-letter / inspect / keys through a subprocess."""

from __future__ import annotations

import json
import re

from tests.cli.conftest import Cli

MESSAGE_FIELDS = {
    "id",
    "key",
    "value",
    "priority",
    "state",
    "attempts",
    "max_attempts",
    "created_at",
    "available_at",
    "lease_expires_at",
    "leased_by",
    "last_error",
    "dead_reason",
    "history",
}
LEASE_FIELDS = {"queue", "handle", "id", "token", "key", "value", "attempt", "expires_at"}


def test_put_get_ack_round_trip(cli: Cli) -> None:
    put = cli.ok("--json", "put", "jobs", '{"to": "a@b"}', "--key", "user-42").json
    assert set(put) == MESSAGE_FIELDS
    assert (put["key"], put["value"], put["state"], put["attempts"]) == (
        "user-42",
        {"to": "a@b"},
        "ready",
        0,
    )
    got = cli.ok("get", "jobs", "--json").json  # global options after the command too
    assert set(got) == LEASE_FIELDS
    assert got["handle"] == f"{got['id']}:{got['token']}"
    assert (got["id"], got["key"], got["value"], got["attempt"]) == (
        put["id"],
        "user-42",
        {"to": "a@b"},
        1,
    )
    acked = cli.ok("--json", "ack", "jobs", got["handle"]).json
    assert acked == {"queue": "jobs", "action": "ack", "id": put["id"], "message": None}
    assert cli.ok("--json", "stats").json == {"queues": []}


def test_table_output_is_readable(cli: Cli) -> None:
    out = cli.ok("put", "jobs", "[1, 2]", "--key", "k").out
    assert re.match(r"put \S+ key=k state=ready", out)
    got = cli.ok("get", "jobs").out
    handle = re.search(r"^handle\s+(\S+)$", got, re.M).group(1)  # type: ignore[union-attr]
    assert re.search(r"^value\s+\[1, 2\]$", got, re.M)
    assert cli.ok("ack", "jobs", handle).out.startswith("ack ")


def test_ack_takes_id_and_token_as_two_arguments(cli: Cli) -> None:
    cli.ok("put", "jobs", "1")
    got = cli.ok("--json", "get", "jobs").json
    cli.ok("ack", "jobs", got["id"], got["token"])
    assert cli.ok("--json", "stats").json["queues"] == []


def test_ack_refuses_bare_id_and_wrong_token(cli: Cli) -> None:
    cli.ok("put", "jobs", "1")
    got = cli.ok("--json", "get", "jobs").json
    r = cli.fails("ack", "jobs", got["id"])
    assert "ID:TOKEN" in r.err
    r = cli.fails("ack", "jobs", f"{got['id']}:0000000000000000")
    assert "lost" in r.err
    r = cli.fails("ack", "jobs", "nosuchid:abc")
    assert "no message 'nosuchid'" in r.err
    cli.ok("ack", "jobs", got["handle"])  # the real holder still can
    r = cli.fails("ack", "jobs", got["handle"])  # and only once


def test_release_and_dead_letter(cli: Cli) -> None:
    cli.ok("put", "jobs", '"v"', "--key", "a")
    h = cli.ok("--json", "get", "jobs").json["handle"]
    rel = cli.ok("--json", "release", "jobs", h, "--error", "busy", "--delay", "1h").json
    assert rel["action"] == "release"
    assert rel["message"]["state"] == "ready" and rel["message"]["last_error"] == "busy"
    assert rel["message"]["available_at"] > rel["message"]["created_at"] + 3000
    cli.fails("get", "jobs")  # delayed an hour
    cli.ok("put", "jobs", '"w"', "--key", "b")
    h = cli.ok("--json", "get", "jobs").json["handle"]
    dead = cli.ok("--json", "dead-letter", "jobs", h, "--error", "ValueError: nope").json
    assert dead["message"]["state"] == "dead"
    assert dead["message"]["dead_reason"] == "ValueError: nope"


def test_put_options_priority_delay_raw_stdin_lines(cli: Cli) -> None:
    cli.ok("put", "q", "1", "--key", "low")
    cli.ok("put", "q", "2", "--key", "high", "--priority", "10")
    cli.ok("put", "q", "3", "--key", "later", "--delay", "5m")
    cli.ok("put", "q", "--raw", "--key", "text", input="hello world\n")
    assert cli.ok("--json", "get", "q").json["key"] == "high"
    assert cli.ok("--json", "get", "q").json["key"] == "low"
    assert cli.ok("--json", "get", "q").json["value"] == "hello world\n"
    cli.fails("get", "q")
    st = cli.ok("--json", "stats", "q").json["queues"][0]
    assert (st["ready"], st["delayed"], st["leased"]) == (0, 1, 3)
    many = cli.ok("--json", "put", "m", "--lines", input='{"n": 1}\n\n{"n": 2}\n').json
    assert [d["value"] for d in many["messages"]] == [{"n": 1}, {"n": 2}]
    cli.ok("put", "m", "-", input='  {"n": 3}\n')
    assert cli.ok("--json", "stats", "m").json["queues"][0]["ready"] == 3


def test_put_at_and_if_ready(cli: Cli) -> None:
    cli.ok("put", "q", "1", "--key", "k", "--at", "4102444800")  # year 2100
    assert cli.ok("--json", "inspect", "q", "k").json["available_at"] == 4102444800.0
    r = cli.fails("put", "q", "2", "--key", "k", "--if-ready", "reject")
    assert "already has a ready message" in r.err
    assert cli.ok("--json", "put", "q", "3", "--key", "k", "--if-ready", "keep").json["value"] == 1


def test_inspect_by_id_by_key_and_dead_key(cli: Cli) -> None:
    mid = cli.ok("--json", "put", "q", '{"x": 1}', "--key", "k").json["id"]
    assert cli.ok("--json", "inspect", "q", mid).json["key"] == "k"
    by_key = cli.ok("--json", "inspect", "q", "k").json
    assert set(by_key) == MESSAGE_FIELDS and by_key["id"] == mid
    h = cli.ok("--json", "get", "q").json["handle"]
    cli.ok("dead-letter", "q", h, "--error", "bad")
    dead = cli.ok("--json", "inspect", "q", "k").json
    assert dead["state"] == "dead" and dead["history"][-1]["kind"] == "dead"
    text = cli.ok("inspect", "q", "k").out
    assert re.search(r"^state\s+dead$", text, re.M) and "dead" in text.split("event")[-1]
    r = cli.fails("inspect", "q", "nope")
    assert "no message with id or key 'nope'" in r.err


def test_keys_with_states(cli: Cli, api) -> None:
    q = api("q")
    for k in ("a", "b", "c"):
        q.put(0, key=k)
    q.dead_letter(q.get(block=False))  # a
    q.get(block=False)  # b
    all_keys = cli.ok("--json", "keys", "q").json
    assert all_keys["queue"] == "q" and all_keys["state"] is None
    assert sorted((d["key"], d["state"]) for d in all_keys["keys"]) == [
        ("a", "dead"),
        ("b", "leased"),
        ("c", "ready"),
    ]
    leased = cli.ok("--json", "keys", "q", "--state", "leased").json
    assert leased["keys"] == [{"key": "b", "state": "leased"}]
    assert cli.ok("keys", "q", "--state", "ready").out.split() == ["key", "state", "c", "ready"]


def test_values_round_trip_as_json(cli: Cli) -> None:
    value = {"nested": [1, 2.5, None, True, "ü"], "s": "x"}
    cli.ok("put", "q", json.dumps(value))
    assert cli.ok("--json", "get", "q").json["value"] == value
