"""The SQL of the ``postgresql://`` store, read from its ``.sql`` files.

``queries.sql`` holds named statements (``-- name: NAME`` then the statement);
``schema.sql`` creates schema version 1; ``MIGRATIONS[v]`` upgrades version
``v`` to ``v + 1``. Both the async and the generated sync code run these
exact texts, so the two can never disagree on SQL.
"""

from __future__ import annotations

import re
from importlib import resources

from leaseq._core.model import HISTORY_LIMIT

__all__ = ["COLS", "MIGRATIONS", "SCHEMA_VERSION", "Q", "schema_sql"]

#: The message columns every statement reads, in the order of ``_logic.R_*``.
COLS = (
    "id, key, value, priority, state, attempts, max_attempts, created_at, available_at, "
    "band, ord_t, ord_s, token, leased_by, leased_at, lease_expires_at, last_error, "
    "follow, history"
)
SCHEMA_VERSION = 1
#: version -> SQL that upgrades it to version + 1 (none yet).
MIGRATIONS: dict[int, str] = {}


def _text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def schema_sql() -> str:
    """The DDL of the current schema version."""
    return _text("schema.sql")


def _load() -> dict[str, str]:
    mcols = ", ".join(f"m.{c.strip()}" for c in COLS.split(","))
    out: dict[str, str] = {}
    for chunk in re.split(r"^-- name: ", _text("queries.sql"), flags=re.M)[1:]:
        name, _, body = chunk.partition("\n")
        lines = [ln for ln in body.splitlines() if not ln.lstrip().startswith("--")]
        sql = "\n".join(lines).strip().rstrip(";")
        sql = sql.replace("{cols}", COLS).replace("{mcols}", mcols)
        out[name.strip()] = sql.replace("{history_limit}", str(HISTORY_LIMIT))
    return out


class _Queries:
    """Attribute access to the named statements (``Q.CLAIM``)."""

    def __init__(self, statements: dict[str, str]) -> None:
        self.__dict__.update(statements)

    def __getattr__(self, name: str) -> str:
        raise AttributeError(f"no statement named {name!r} in queries.sql")


Q = _Queries(_load())
_TABLES = re.compile(r"\bleaseq_(messages|dead|followups|outcomes|seq|version)\b")


def qualified(schema: str) -> _Queries:
    """The statements with every table and sequence named in ``schema``, so they run
    on any connection (a caller's own, for ``put(connection=...)``), whatever its
    search_path. ``schema`` is a validated plain identifier."""
    return _Queries(
        {name: _TABLES.sub(f'"{schema}".leaseq_\\1', sql) for name, sql in Q.__dict__.items()}
    )
