"""Lease tokens and message ids: unique, unguessable, distinct after fork()."""

from __future__ import annotations

import os
import re
import threading

import pytest

from leaseq._core import ids


def test_tokens_are_16_hex_chars_and_unique() -> None:
    tokens = [ids.new_token() for _ in range(20_000)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in tokens)
    assert len(set(tokens)) == len(tokens)


def test_ids_are_unique_across_threads() -> None:
    found: list[list[str]] = []

    def work() -> None:
        found.append([ids.new_id() for _ in range(5000)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for chunk in found for i in chunk]
    assert len(set(flat)) == len(flat) == 20_000


def test_tokens_are_unique_across_threads() -> None:
    found: list[list[str]] = []

    def work() -> None:
        found.append([ids.new_token() for _ in range(5000)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [t for chunk in found for t in chunk]
    assert len(set(flat)) == len(flat)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_fresh_ids_and_tokens() -> None:
    ids.new_token()  # fill the parent's token block so a child could reuse it
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it would hand out, then leave at once
        try:
            os.write(write_end, f"{ids.new_token()} {ids.new_id()}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_token, child_id = pipe.read().split()
    os.waitpid(pid, 0)
    parent_tokens = {ids.new_token() for _ in range(600)}
    assert child_token not in parent_tokens
    assert child_id.split("-")[0] != ids.new_id().split("-")[0]
