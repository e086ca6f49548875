"""Generate the sync face from the async one: ``leaseq/_async/*.py`` -> ``leaseq/_sync/*.py``.

Usage: ``python scripts/unasync.py`` (write) or ``--check`` (exit 1 when stale).
The rules are plain token substitutions, so the generated code reads like the
source; lines between ``# unasync: sync-only begin``/``end`` markers are
comments in the async source and code in the sync output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "leaseq"
PAIRS = [("_async/queue.py", "_sync/queue.py")]

SUBS = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"\bAsyncLeaseContext\b", "LeaseContext"),
    (r"\bAsyncQueue\b", "Queue"),
    (r"\bAsyncWaiter\b", "ThreadWaiter"),
    (
        r"_face\.InlineStore\(store\) if store\.inline else _face\.ThreadedStore\(store\)",
        "_face.SyncStore(store)",
    ),
    (r"\(async face\)", "(sync face, thread-safe)"),
    (r"Callable\[\[\], Awaitable\[(.*?)\]\]", r"Callable[[], \1]"),
    (r"from collections\.abc import Awaitable, Callable", "from collections.abc import Callable"),
]
HEADER = (
    '"""``Queue``: the sync, thread-safe face. GENERATED from ``leaseq/_async/{src}``\n'
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


def convert(text: str, src_name: str) -> str:
    # Replace the module docstring with the generated header.
    text = re.sub(r'\A""".*?"""\n', HEADER.format(src=src_name), text, count=1, flags=re.S)
    text = _sync_only(text)
    for pattern, repl in SUBS:
        text = re.sub(pattern, repl, text)
    return text


def _format(text: str) -> str:
    """Format like the rest of the tree, so a generated file passes ``ruff format --check``."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        raise SystemExit("ruff is needed to generate the sync face: pip install -e '.[dev]'")
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
    for src, dst in PAIRS:
        out = _format(convert((ROOT / src).read_text(), Path(src).name))
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
