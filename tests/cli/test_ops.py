"""stats / health / dead / purge / migrate and the error contract, through a subprocess."""

from __future__ import annotations

import time

import pytest

from tests.cli.conftest import Cli

STATS_FIELDS = {
    "queue",
    "ready",
    "delayed",
    "leased",
    "dead",
    "total",
    "oldest_ready_age",
    "oldest_leased_age",
    "by_owner",
}


def _dead(api, queue: str, key: str, error: str) -> str:
    q = api(queue)
    mid = q.put(0, key=key).id
    lease = q.take(key, block=False)
    q.dead_letter(lease, error=error)
    return str(mid)


def test_stats_all_queues_and_one(cli: Cli, api) -> None:
    api("a").put(1)
    api("a").put(2, delay=3600)
    api("b").put(3)
    cli.ok("get", "b", "--owner", "w1")
    doc = cli.ok("--json", "stats").json
    assert [d["queue"] for d in doc["queues"]] == ["a", "b"]
    a, b = doc["queues"]
    assert set(a) == STATS_FIELDS
    assert (a["ready"], a["delayed"], a["leased"], a["total"]) == (1, 1, 0, 2)
    assert (b["leased"], b["by_owner"]) == (1, {"w1": 1})
    assert cli.ok("--json", "stats", "b").json["queues"] == [
        b
        | {
            "oldest_ready_age": None,
            "oldest_leased_age": pytest.approx(b["oldest_leased_age"], abs=30),
        }
    ]
    table = cli.ok("stats").out.splitlines()
    assert table[0].split()[:6] == ["queue", "ready", "delayed", "leased", "dead", "total"]
    assert table[1].split()[:6] == ["a", "1", "1", "0", "0", "2"]


def test_stats_watch_prints_json_lines(cli: Cli) -> None:
    cli.ok("put", "a", "1")
    lines = cli.ok("--json", "stats", "a", "--watch", "--interval", "0.05", "--count", "3").lines
    assert len(lines) == 3
    assert all(set(d) == {"at", "queues"} for d in lines)
    assert lines[0]["queues"][0]["rate"] is None
    assert lines[2]["queues"][0]["rate"] == 0.0
    plain = cli.ok("stats", "--watch", "--interval", "0.05", "--count", "2").out
    assert plain.count("# ") == 2 and "backlog rate" in plain


def test_health_reports_stale_leases_and_dead_by_type(cli: Cli, api) -> None:
    _dead(api, "q", "d1", "ValueError: bad input")
    _dead(api, "q", "d2", "ValueError: other")
    _dead(api, "q", "d3", "CommandFailed: command x exited with status 3")
    api("q").put(1, key="stuck")
    cli.ok("get", "q", "--lease-timeout", "0.2")
    time.sleep(0.3)  # a real subprocess holds a real-time lease: let it lapse
    doc = cli.ok("--json", "health", "q").json
    assert doc["status"] == "warn"
    assert doc["stale_leases"] == 1 and doc["stale_keys"] == ["stuck"]
    assert doc["dead_by_error"] == {"ValueError": 2, "CommandFailed": 1}
    assert doc["dead"] == 3
    text = cli.ok("health", "q").out
    assert "stale leases" in text and "ValueError" in text


def test_health_ok(cli: Cli) -> None:
    cli.ok("put", "q", "1")
    doc = cli.ok("--json", "health", "q").json
    assert (doc["status"], doc["stale_leases"], doc["dead_by_error"]) == ("ok", 0, {})


def test_dead_list_summary_requeue_prune(cli: Cli, api) -> None:
    m1 = _dead(api, "q", "k1", "ValueError: a")
    m2 = _dead(api, "q", "k2", "KeyError: b")
    listed = cli.ok("--json", "dead", "q").json
    assert [d["id"] for d in listed["dead"]] == [m1, m2]
    assert cli.ok("dead", "q").out.count("\n") == 3
    summary = cli.ok("--json", "dead", "q", "--summary").json
    assert summary["total"] == 2
    assert summary["by_error"] == {"ValueError": 1, "KeyError": 1}
    assert summary["oldest_age"] >= summary["newest_age"] >= 0
    assert cli.ok("--json", "dead", "q", "--requeue", m1).json == {"queue": "q", "requeued": [m1]}
    assert cli.ok("--json", "inspect", "q", "k1").json["state"] == "ready"
    r = cli.fails("dead", "q", "--requeue", "nope")
    assert "no dead letter 'nope'" in r.err
    assert cli.ok("--json", "dead", "q", "--prune-older-than", "7d").json["pruned"] == 0
    assert cli.ok("--json", "dead", "q", "--prune-older-than", "0s").json["pruned"] == 1
    again = api("q").get(block=False)  # the requeued k1, delivered again
    assert again.id == m1
    api("q").dead_letter(again)
    assert cli.ok("--json", "dead", "q", "--all").json["requeued"] == [m1]
    cli.fails("dead", "q", "--prune-older-than", "7 days")


def test_purge_needs_yes(cli: Cli, api) -> None:
    _dead(api, "q", "k", "x")
    api("q").put(1)
    r = cli.fails("purge", "q")
    assert "--yes" in r.err and "2 messages" in r.err
    assert cli.ok("--json", "purge", "q", "--yes").json == {"queue": "q", "purged": 2}
    cli.fails("purge", "q", "--yes")  # nothing left: the queue is gone


def test_migrate_on_sqlite(cli: Cli) -> None:
    doc = cli.ok("--json", "migrate").json
    assert doc["store"] == cli.url and doc["migrated"] is False
    assert "no migration" in cli.ok("migrate").out


def test_store_from_environment_and_default(cli: Cli) -> None:
    cli.ok("put", "q", "1", store=False, env={"LEASEQ_STORE": cli.url})
    assert cli.ok("--json", "stats").json["queues"][0]["ready"] == 1
    cli.ok("put", "d", "1", store=False)  # default: sqlite:///./leaseq.db in the cwd
    assert (cli.tmp / "leaseq.db").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--store", "nosuch://x", "stats"), "unknown store URL"),
        (("--store", "sqlite://host/x.db", "stats"), "has a host part"),
        (("--store", "sqlite:///no/such/dir/x.db", "put", "q", "1"), "does not exist"),
        (("put", "q", "{bad"), "not valid JSON"),
        (("put", "q", "1", "--priority", "5000"), "outside [-1000, 1000]"),
        (("put", "q", "1", "--delay", "soon"), "bad duration"),
        (("stats", "missing"), "no queue 'missing'"),
        (("inspect", "missing", "x"), "no queue 'missing'"),
        (("dead", "missing"), "no queue 'missing'"),
        (("health", "missing"), "no queue 'missing'"),
        (("get", "missing"), "no message ready"),
    ],
)
def test_errors_are_one_line(cli: Cli, args: tuple[str, ...], needle: str) -> None:
    r = cli.fails(*args, store=not args[0].startswith("--store"))
    assert needle in r.err
    assert r.err.startswith("leaseq ")


def test_usage_errors_exit_2_and_debug_shows_traceback(cli: Cli) -> None:
    assert "invalid choice" in cli.fails("frobnicate", code=2).err
    cli.fails("put", code=2)
    r = cli("--debug", "stats", "missing")
    assert r.code == 1 and "Traceback" in r.err


def test_version_and_help(cli: Cli) -> None:
    assert cli.ok("--version").out.startswith("leaseq ")
    assert "exec" in cli.ok("--help").out
