"""Generate the sync face from the async one: ``leaseq/_async/*.py`` -> ``leaseq/_sync/*.py``.

Usage: ``python scripts/unasync.py`` (write) or ``--check`` (exit 1 when stale).
The rules are plain token substitutions, so the generated code reads like the
source; lines between ``# unasync: sync-only begin``/``end`` markers are
comments in the async source and code in the sync output; lines between
``# unasync: async-only begin``/``end`` are left out of the sync output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent / "src" / "leaseq"
# Substitutions for the postgresql:// store's primitives only (applied before SUBS).
PG_SUBS = [
    (r"\bAsyncConnectionPool\b", "ConnectionPool"),
    (r"\bAsyncPostgresCore\b", "PostgresCore"),
    (r"\bpsycopg\.AsyncConnection\b", "psycopg.Connection"),
    (r"\basyncio\.Lock\b", "threading.Lock"),
    (r"^import asyncio$", "import threading"),
]
# (async source, generated file, title[, extra substitutions]), paths under src/leaseq.
PAIRS: list[tuple[Any, ...]] = [
    ("_async/queue.py", "_sync/queue.py", "``Queue``: the sync, thread-safe face"),
    ("_async/worker.py", "_sync/worker.py", "``Engine``: the thread-based worker loop"),
    (
        "stores/postgres/_aio.py",
        "stores/postgres/_sync.py",
        "The sync primitives of ``postgresql://``",
        PG_SUBS,
    ),
]

SUBS = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"\bAsyncLeaseContext\b", "LeaseContext"),
    (r"\bAsyncQueue\b", "Queue"),
    (r"\bAsyncEngine\b", "Engine"),
    (r"\bleaseq\._async\.queue\b", "leaseq._sync.queue"),
    (r"\bAsyncWaiter\b", "ThreadWaiter"),
    (r"_face\.async_primitives\(store\)", "_face.SyncStore(store)"),
    (r"\(async face\)", "(sync face, thread-safe)"),
    (r"Callable\[\[\], Awaitable\[(.*?)\]\]", r"Callable[[], \1]"),
    (r"Callable\[\.\.\., Awaitable\[(.*?)\]\]", r"Callable[..., \1]"),
    (r"from collections\.abc import Awaitable, Callable", "from collections.abc import Callable"),
]
HEADER = (
    '"""{title}. GENERATED from ``leaseq/{src}``\n'
    "by ``scripts/unasync.py`` — do not edit; edit the async source and run\n"
    '``make generate``."""\n'
)


def _sync_only(text: str) -> str:
    def uncomment(match: re.Match[str]) -> str:
        body = match.group(1)
        return re.sub(r"^(\s*)# ?", r"\1", body, flags=re.M)

    pattern = re.compile(
        r"^[ \t]*# unasync: sync-only begin\n((?:.*\n)*?)[ \t]*# unasync: sync-only end\n",
        re.M,
    )
    return pattern.sub(lambda m: uncomment(m), text)


def _drop_async_only(text: str) -> str:
    pattern = re.compile(
        r"^[ \t]*# unasync: async-only begin\n(?:.*\n)*?[ \t]*# unasync: async-only end\n",
        re.M,
    )
    return pattern.sub("", text)


def convert(
    text: str, src_name: str, title: str, extra: list[tuple[str, str]] | None = None
) -> str:
    # Replace the module docstring with the generated header.
    text = re.sub(
        r'\A""".*?"""\n', HEADER.format(src=src_name, title=title), text, count=1, flags=re.S
    )
    text = _sync_only(text)
    text = _drop_async_only(text)
    for pattern, repl in [*(extra or []), *SUBS]:
        text = re.sub(pattern, repl, text, flags=re.M)
    return text


def _format(text: str) -> str:
    """Format like the rest of the tree, so a generated file passes ``ruff format --check``."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        raise SystemExit("ruff is needed to generate the sync face: pip install -e '.[dev]'")
    # Renamed imports may sort differently: sort them the way ``ruff check`` wants.
    sorted_text = subprocess.run(
        [ruff, "check", "--select", "I", "--fix", "--quiet", "--stdin-filename", "gen.py", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT.parent.parent,
    ).stdout
    text = sorted_text or text
    done = subprocess.run(
        [ruff, "format", "--stdin-filename", "queue.py", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT.parent.parent,
    )
    return done.stdout


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for src, dst, title, *extra in PAIRS:
        text = (ROOT / src).read_text()
        out = _format(convert(text, src, title, extra[0] if extra else None))
        target = ROOT / dst
        if check:
            if not target.exists() or target.read_text() != out:
                stale.append(dst)
        else:
            target.write_text(out)
    if stale:
        print(f"generated code is stale: {', '.join(stale)}; run `make generate`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
