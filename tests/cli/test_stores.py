"""A round trip of the main commands on every durable store the conformance suite
knows (``tests/conformance/stores.py``): a store added there is covered here too.
``memory://`` is left out: it lives inside one process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conformance.stores import STORE_FACTORIES

DURABLE = sorted(name for name in STORE_FACTORIES if name not in ("memory", "sqlite"))


@pytest.mark.parametrize("store", DURABLE)
def test_round_trip_on_store(tmp_path: Path, request: pytest.FixtureRequest, store: str) -> None:
    cli = Cli(tmp_path)
    cli.url = STORE_FACTORIES[store](tmp_path, request)
    cli.ok("put", "jobs", '{"n": 1}', "--key", "a")
    cli.ok("put", "jobs", '"x"', "--key", "b")
    got = cli.ok("--json", "get", "jobs").json
    assert (got["key"], got["value"]) == ("a", {"n": 1})
    cli.ok("dead-letter", "jobs", got["handle"], "--error", "ValueError: nope")
    assert cli.ok("--json", "dead", "jobs", "--summary").json["by_error"] == {"ValueError": 1}
    r = cli.ok("--json", "exec", "jobs", "--drain", "--", sys.executable, "-c", "pass")
    assert r.json["succeeded"] == 1
    st = cli.ok("--json", "stats", "jobs").json["queues"][0]
    assert (st["ready"], st["leased"], st["dead"]) == (0, 0, 1)
    assert cli.ok("--json", "purge", "jobs", "--yes").json["purged"] == 1
