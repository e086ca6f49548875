"""The ``file://`` store's own guarantees: names, options, corrupt files, fsync, caches."""

from __future__ import annotations

import os
import stat
import zlib
from pathlib import Path
from typing import Any

import pytest

import leaseq
from leaseq.errors import ConfigurationError
from leaseq.stores.base import PutRequest
from leaseq.stores.file import _format as F
from leaseq.stores.file._view import snapshot
from leaseq.testing import FakeClock


def qdir(root: Path, queue: str = "default") -> Path:
    return root / f"q={queue}"


def names(root: Path, sub: str, queue: str = "default") -> list[str]:
    return sorted(os.listdir(qdir(root, queue) / sub))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Any:
    opened: list[leaseq.Queue] = []

    def make(url: str | None = None, **options: Any) -> leaseq.Queue:
        options.setdefault("clock", clock)
        q = leaseq.Queue(url or f"file://{tmp_path}", **options)
        opened.append(q)
        return q

    yield make
    for q in opened:
        q.close()


# -- names and layout -----------------------------------------------------------------
def test_a_sorted_listing_of_ready_is_the_delivery_order(make, tmp_path, clock):
    q = make()
    q.put("low", priority=-5)
    clock.advance(1)
    q.put("a")
    q.put("b")
    q.put("high", priority=7)
    q.put("later", delay=5)  # delayed: sorts by its due time within priority 0
    listed = names(tmp_path, "ready")
    assert len(listed) == 5
    values = [q.store.get_message("default", F.name_id(n), now=clock()).value for n in listed]
    assert values == ["high", "a", "b", "later", "low"]
    clock.advance(5)
    assert [q.get(block=False).value for _ in range(5)] == ["high", "a", "b", "later", "low"]


def test_times_round_trip_exactly_and_sort_like_floats():
    for t in (0.0, -2.5, 1e-9, 1_700_000_000.123456789, 3e12):
        assert F.dec_t(F.enc_t(t)) == t
    ts = [-1e9, -1.0, -1e-12, 0.0, 1e-12, 1.0, 1_700_000_000.000001, 1e12]
    assert sorted(ts, key=F.enc_t) == ts
    for t in ts:  # the names' 16 hex digits, by the fast path or not
        for u in (-0.0, 0.0, 1.5, t):
            assert F.hex_pair(t, u) == (f"{F.enc_t(t):016x}", f"{F.enc_t(u):016x}")
        assert F.dec_hex(f"{F.enc_t(t):016x}") == t
    assert sorted(ts, key=lambda t: F.hex_pair(t, t)[0]) == ts


def test_a_claim_renames_ready_into_leased_with_the_lease_in_the_name(make, tmp_path, clock):
    q = make()
    q.put("x", key="k")
    lease = q.get(block=False, lease_timeout=10, owner="w1")
    assert names(tmp_path, "ready") == []
    [leased] = names(tmp_path, "leased")
    parsed = F.parse_leased(leased)
    assert parsed.token == lease.token
    assert F.dec_t(parsed.exp) == lease.expires_at == clock() + 10
    assert F.dec_t(parsed.claimed) == clock()  # a lease is judged from its claim time
    assert parsed.attempts == 1
    assert F.decode_owner(parsed.owner_enc) == "w1"
    q.ack(lease)
    assert names(tmp_path, "leased") == [] and names(tmp_path, "keys") == []


def test_ids_are_unique_and_carry_no_collision_prone_time_only_prefix(make):
    q = make()
    ids = {q.put(i).id for i in range(500)}
    assert len(ids) == 500


def test_queue_names_are_escaped_into_directory_names(make, tmp_path):
    q = make(name="a/b c")
    q.put(1)
    assert (tmp_path / "q=a%2Fb%20c" / "ready").is_dir()
    assert q.store.queues() == ["a/b c"]


# -- options --------------------------------------------------------------------------
def test_durable_can_be_set_in_the_url_or_as_an_option(tmp_path):
    from urllib.parse import urlsplit

    from leaseq.stores.file import open_file

    for url, opts, want in [
        (f"file://{tmp_path}/a?durable=1", {}, True),
        (f"file://{tmp_path}/b", {"durable": True}, True),
        (f"file://{tmp_path}/c", {}, False),
    ]:
        store = open_file(urlsplit(url), **opts)
        try:
            assert store._core.durable is want
        finally:
            store.close()


@pytest.mark.parametrize(
    "url",
    ["file://otherhost/tmp/x", "file://", "file:///tmp/x?durable=maybe", "file:///tmp/x?bogus=1"],
)
def test_bad_urls_are_configuration_errors(url):
    with pytest.raises(ConfigurationError):
        leaseq.Queue(url)


def test_values_use_the_serializer(make, tmp_path):
    q = make(f"file://{tmp_path}/p", serializer="pickle")
    q.put({1, 2, 3})
    assert q.get(block=False).value == {1, 2, 3}
    j = make(f"file://{tmp_path}/j")
    with pytest.raises(TypeError):
        j.put({1, 2})
    assert not (tmp_path / "j" / "q=default" / "ready").exists() or (
        names(tmp_path / "j", "ready") == [] and names(tmp_path / "j", "tmp") == []
    )
    j.put(b"\x00raw")
    assert j.get(block=False).value == b"\x00raw"


# -- corrupt and torn files -----------------------------------------------------------
def _plant(root: Path, data: bytes, queue: str = "default") -> str:
    """A file with a valid ready name but the given content, as a crash could leave."""
    name = F.ready_name(0, False, F.enc_t(0.0), 1, 0, None, "-", "00000000000000000000a-1")
    (qdir(root, queue) / "ready" / name).write_bytes(data)
    return name


@pytest.mark.parametrize(
    "data",
    [b"", b"LQF1\x00\x00", b"garbage that is not a record at all", None],
    ids=["empty", "truncated-header", "not-a-record", "bad-checksum"],
)
def test_a_corrupt_file_is_quarantined_with_a_reason_and_never_spins(make, tmp_path, data):
    q = make()
    q.put("good")
    if data is None:  # a torn write: a real record with its tail cut off
        whole = F.encode_record("00000000000000000000a-1", None, 0.0, b"b" + b"x" * 100)
        data = whole[:-10]
    _plant(tmp_path, data)
    # The planted file sorts first (available at time 0): claiming must skip it.
    good = q.get(block=False)
    assert good.value == "good"
    q.ack(good)
    with pytest.raises(leaseq.Empty):
        q.get(block=False)
    [dead] = q.dead_letters()
    assert dead.id == "00000000000000000000a-1"
    assert dead.last_error.startswith("corrupt:")
    assert dead.dead_reason.startswith("corrupt:")
    assert names(tmp_path, "ready") == [] and names(tmp_path, "leased") == []


def test_a_record_decodes_or_says_why_not():
    mid = "00000000000000000000a-1"
    whole = F.encode_record(mid, "k\tey", 1.5, b"bx\tyz")
    assert F.decode_record(whole) == (mid, "k\tey", 1.5, b"bx\tyz")
    assert F.decode_keyless(whole) == (mid, 1.5, b"bx\tyz")  # (a key: the long way)
    keyless = F.encode_record(mid, None, 1.5, b"bx\ty\tz")
    assert F.decode_record(keyless) == (mid, mid, 1.5, b"bx\ty\tz")
    assert F.decode_keyless(keyless) == (mid, 1.5, b"bx\ty\tz")
    for data, why in [
        (b"LQF1", "truncated record (4 bytes)"),
        (b"LQF2" + whole[4:], "not a leaseq record (bad magic)"),
        (whole[:-1], "checksum mismatch (torn or damaged write)"),
        (keyless[:-1], "checksum mismatch (torn or damaged write)"),
        (
            F._HDR.pack(F.MAGIC, zlib.crc32(b"no-tabs\tx"), 7) + b"no-tabs\tx",
            "unreadable header: not enough values to unpack (expected 3, got 1)",
        ),
    ]:
        for decode in (F.decode_record, F.decode_keyless):
            with pytest.raises(F.CorruptRecord) as err:
                decode(data)
            assert err.value.args[0] == why


def test_a_value_the_serializer_cannot_read_is_quarantined(make, tmp_path):
    q = make()
    q.put("fine")
    bad = F.encode_record("00000000000000000000a-1", None, 0.0, b"s{not json")
    _plant(tmp_path, bad)
    assert q.get(block=False).value == "fine"
    [dead] = q.dead_letters()
    assert "undecodable" in dead.last_error


def test_foreign_files_in_the_directories_are_ignored(make, tmp_path):
    q = make()
    q.put("x")
    (qdir(tmp_path) / "ready" / "README").write_text("not a message")
    assert q.qsize() == 1
    assert q.get(block=False).value == "x"
    with pytest.raises(leaseq.Empty):
        q.get(block=False)


def test_a_half_done_rewrite_is_recovered_under_the_lock(make, tmp_path, clock):
    q = make()
    q.put("v1", key="k")
    qd = qdir(tmp_path)
    [name] = names(tmp_path, "ready")
    mid = F.name_id(name)
    # Simulate a process killed inside rewrite(): new content written, original grabbed.
    (qd / "work" / f"{mid}.new").write_bytes(b"partial")
    os.rename(qd / "ready" / name, qd / "work" / f"{mid}~ready~{name}.old")
    assert q.peek("k") is None  # invisible while the rewrite is pending
    q.put("v2", key="k")  # takes the lock: recovers first, then updates
    assert names(tmp_path, "work") == []
    assert q.peek("k").value == "v2"
    assert q.peek("k").id == mid
    assert [q.get(block=False).value] == ["v2"]


# -- durability: fsync proof ----------------------------------------------------------
class FsyncSpy:
    """Records what each ``os.fsync`` call synced: a directory or a file, and its path."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._real = os.fsync

    def __call__(self, fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        self.calls.append((kind, os.readlink(f"/proc/self/fd/{fd}")))
        self._real(fd)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fds")
def test_durable_mode_fsyncs_the_file_first_then_the_directories(make, tmp_path, monkeypatch):
    spy = FsyncSpy()
    monkeypatch.setattr(os, "fsync", spy)
    q = make(f"file://{tmp_path}?durable=1")
    qd = str(qdir(tmp_path))
    q.put("x")
    # put: the record in tmp/ (before it is renamed into place), then ready/.
    assert spy.calls[0][0] == "file" and spy.calls[0][1].startswith(qd + "/tmp/")
    assert ("dir", qd + "/ready") in spy.calls[1:]
    spy.calls.clear()
    lease = q.get(block=False)
    # claim: a rename from ready/ to leased/: both directories.
    assert ("dir", qd + "/leased") in spy.calls and ("dir", qd + "/ready") in spy.calls
    spy.calls.clear()
    q.ack(lease)
    assert spy.calls == [("dir", qd + "/leased")]


def test_non_durable_mode_never_fsyncs(make, tmp_path, monkeypatch):
    spy = FsyncSpy()
    monkeypatch.setattr(os, "fsync", spy)
    q = make()
    q.put("x", key="k")
    q.ack(q.get(block=False))
    assert spy.calls == []


# -- the cached view and other processes' changes -------------------------------------
def test_a_second_store_object_sees_changes_through_the_log(tmp_path, clock):
    # Two cores on one directory behave like two processes (different durability
    # settings get different cores in one process).
    a = leaseq.Queue(f"file://{tmp_path}", clock=clock)
    b = leaseq.Queue(f"file://{tmp_path}?durable=1", clock=clock)
    try:
        assert a.store._core is not b.store._core
        with pytest.raises(leaseq.Empty):
            b.get(block=False)  # b builds its view now (empty)
        a.put("one")
        lease = b.get(block=False)  # seen through a's log entry, no relisting
        assert lease.value == "one"
        clock.advance(31)
        # b's lease expired: a takes it over (a learnt of the lease from b's log entry)
        assert a.get(block=False).attempt == 2
        with pytest.raises(leaseq.LeaseLost):
            b.ack(lease)
    finally:
        a.close()
        b.close()


def test_the_log_is_rotated_and_readers_relist(tmp_path, clock, monkeypatch):
    from leaseq.stores.file import _qdir

    monkeypatch.setattr(_qdir, "LOG_LIMIT", 1000)
    a = leaseq.Queue(f"file://{tmp_path}", clock=clock)
    b = leaseq.Queue(f"file://{tmp_path}?durable=1", clock=clock)
    try:
        with pytest.raises(leaseq.Empty):
            b.get(block=False)
        for i in range(600):  # many appends: rotation happens several times
            a.put(i)
        assert os.path.getsize(qdir(tmp_path) / "log") < 600 * 100
        got = [b.get(block=False).value for _ in range(600)]
        assert got == list(range(600))
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("said", [True, False], ids=["said", "rotator-killed-before-saying"])
def test_a_reader_follows_a_rotated_log(tmp_path, clock, said):
    from leaseq.stores.file import _qdir

    a = leaseq.Queue(f"file://{tmp_path}", clock=clock)
    b = leaseq.Queue(f"file://{tmp_path}?durable=1", clock=clock)  # (another Core: its own fds)
    try:
        a.put("first")
        a.put("busy")
        assert b.get(block=False).value == "first"  # b tracks the log: it holds "busy"
        # a rotates the log (as ``log`` does past LOG_LIMIT) ...
        os.unlink(qdir(tmp_path) / "log")
        if said:
            a.store._core.qdir("default")._say_rotated()
        # ... and a writer that opened the new log puts a message b must see first:
        rec = F.encode_record("00000000000000000000b-1", None, clock(), b's"second"')
        name = F.ready_name(5, False, F.enc_t(clock()), 1, 0, None, "-", "00000000000000000000b-1")
        (qdir(tmp_path) / "ready" / name).write_bytes(rec)
        with open(qdir(tmp_path) / "log", "a") as log:
            log.write(f"otherwid r {name}\n")
        qd = b.store._core.qdir("default")
        if not said:  # b looks at its log's size only: it learns of the rotation
            assert b.get(block=False).value == "busy"  # within LEASE_SCAN
            qd.last_leased -= _qdir.LEASE_SCAN
        assert b.get(block=False).value == "second"
    finally:
        a.close()
        b.close()


def test_a_claim_sees_another_processs_put_by_the_change_tick(tmp_path, clock):
    a = leaseq.Queue(f"file://{tmp_path}", clock=clock)
    b = leaseq.Queue(f"file://{tmp_path}?durable=1", clock=clock)  # (another Core: its own view)
    try:
        a.put("first")
        a.put("busy")
        assert b.get(block=False).value == "first"  # b tracks the log: it holds "busy"
        a.put("urgent", priority=5)  # appended to the log, the tick changed
        assert b.get(block=False).value == "urgent"
    finally:
        a.close()
        b.close()


def test_a_log_line_whose_writer_died_before_its_tick_is_read_within_lease_scan(tmp_path, clock):
    from leaseq.stores.file import _qdir

    a = leaseq.Queue(f"file://{tmp_path}", clock=clock)
    b = leaseq.Queue(f"file://{tmp_path}?durable=1", clock=clock)
    try:
        for value in ("first", "busy", "busy too"):
            a.put(value)
        assert b.get(block=False).value == "first"
        # A producer killed between its log append and its tick:
        rec = F.encode_record("00000000000000000000b-1", None, clock(), b's"urgent"')
        name = F.ready_name(5, False, F.enc_t(clock()), 1, 0, None, "-", "00000000000000000000b-1")
        (qdir(tmp_path) / "ready" / name).write_bytes(rec)
        with open(qdir(tmp_path) / "log", "a") as log:
            log.write(f"otherwid r {name}\n")
        qd = b.store._core.qdir("default")
        assert b.get(block=False).value == "busy"  # b did not read the log
        assert name not in qd.known
        qd.last_leased -= _qdir.LEASE_SCAN  # a second later
        assert b.get(block=False).value == "urgent"
    finally:
        a.close()
        b.close()


def test_a_message_renamed_into_place_but_never_logged_is_found_by_a_relist(tmp_path, clock):
    from leaseq.stores.file import _qdir

    q = leaseq.Queue(f"file://{tmp_path}", clock=clock)
    try:
        with pytest.raises(leaseq.Empty):
            q.get(block=False)
        # A producer killed between its rename and its log entry:
        rec = F.encode_record("00000000000000000000b-1", None, clock(), b's"orphan"')
        name = F.ready_name(0, False, F.enc_t(clock()), 1, 0, None, "-", "00000000000000000000b-1")
        (qdir(tmp_path) / "ready" / name).write_bytes(rec)
        qd = q.store._core.qdir("default")
        qd.last_relist -= _qdir.RELIST_IDLE  # as if a second passed
        assert q.get(block=False).value == "orphan"
    finally:
        q.close()


def test_a_pure_producer_keeps_no_cached_view(make):
    q = make()
    for i in range(100):
        q.put(i)
    qd = q.store._core.qdir("default")
    assert not qd.tracking and qd.known == set()


def test_acked_leases_leave_nothing_behind_in_the_view(make):
    q = make()
    for i in range(3000):
        q.put(i)
    for _ in range(3000):
        q.ack(q.get(block=False))
    qd = q.store._core.qdir("default")
    assert qd.known == set() and qd.lknown == set() and qd.held == {} and qd.byid == {}
    assert len(qd.lheap) <= 1024 + 4 * len(qd.lknown)


def test_handles_share_one_core_per_directory_in_a_process(make, tmp_path):
    a = make()
    b = make()
    assert a.store._core is b.store._core
    a.close()
    b.put("still works")
    assert b.get(block=False).value == "still works"


def test_a_waiter_is_woken_by_another_process_put_within_the_poll_bound(tmp_path):
    # Two cores on one directory stand for two processes: no shared notifier.
    import threading
    import time

    from leaseq.stores.file import POLL_INTERVAL

    waiter = leaseq.Queue(f"file://{tmp_path}")
    writer = leaseq.Queue(f"file://{tmp_path}?durable=1")
    try:
        got: list[Any] = []
        t = threading.Thread(target=lambda: got.append(waiter.get(timeout=10)))
        t.start()
        time.sleep(0.2)  # let it block (the watcher starts with the first waiter)
        start = time.monotonic()
        writer.put("hello")
        t.join(10)
        latency = time.monotonic() - start
        assert got and got[0].value == "hello"
        assert latency < POLL_INTERVAL + 1.0  # documented: about one poll interval
    finally:
        waiter.close()
        writer.close()


def test_another_process_lease_expiring_wakes_a_waiter(tmp_path, clock):
    import threading
    import time

    waiter = leaseq.Queue(f"file://{tmp_path}", clock=clock)
    holder = leaseq.Queue(f"file://{tmp_path}?durable=1", clock=clock)
    try:
        holder.put("job")
        lease = holder.get(block=False, lease_timeout=30)
        got: list[Any] = []
        t = threading.Thread(target=lambda: got.append(waiter.get(timeout=10)))
        t.start()
        time.sleep(0.2)
        clock.advance(30)  # the other "process" holder's lease expires
        t.join(10)
        assert got and got[0].value == "job" and got[0].attempt == 2
        with pytest.raises(leaseq.LeaseLost):
            holder.ack(lease)
    finally:
        waiter.close()
        holder.close()


# -- trash: acked files are reused by puts ---------------------------------------------
def test_an_acked_file_goes_to_trash_and_the_next_put_reuses_its_inode(make, tmp_path):
    q = make()
    q.put("a-longer-value-than-the-next")
    lease = q.get(block=False)
    [leased] = names(tmp_path, "leased")
    inode = os.stat(qdir(tmp_path) / "leased" / leased).st_ino
    q.ack(lease)
    assert names(tmp_path, "leased") == [] and names(tmp_path, "trash") == [leased]
    q.put("b")
    [ready] = names(tmp_path, "ready")
    assert os.stat(qdir(tmp_path) / "ready" / ready).st_ino == inode
    assert names(tmp_path, "trash") == []
    assert q.get(block=False).value == "b"  # shorter: the old tail was cut off


def test_a_reader_of_a_reused_file_never_sees_the_new_message_as_the_old(make, tmp_path):
    q = make()
    q.put("old")
    lease = q.get(block=False)
    store, now = q.store, q.clock()
    [e] = [e for e in _scan(store, now) if e.mid == lease.message.id]
    # A slow reader listed the old message, then it was acked and its file reused
    # under the same name (the worst case: same path, another message's record).
    q.ack(lease)
    store.put("default", PutRequest("new"), now=now)
    [ready] = names(tmp_path, "ready")
    os.rename(qdir(tmp_path) / "ready" / ready, qdir(tmp_path) / "leased" / e.name)
    msg = snapshot(store._core.qdir("default"), e, store.codec)
    assert msg is not None and msg.value is None and msg.last_error.startswith("corrupt: stale")
    os.unlink(qdir(tmp_path) / "leased" / e.name)  # acked and moved on: vanished
    assert snapshot(store._core.qdir("default"), e, store.codec) is None


def test_trash_is_bounded_and_an_idle_claim_trims_it(make, tmp_path, monkeypatch):
    from leaseq.stores.file import _qdir

    monkeypatch.setattr(_qdir, "TRASH_MAX", 3)
    monkeypatch.setattr(_qdir, "TRASH_KEEP", 1)
    q = make()
    q.put_many(list(range(5)))
    for _ in range(5):
        q.ack(q.get(block=False))
    assert len(names(tmp_path, "trash")) == 3  # beyond the bound, acks unlink
    q.store._core.qdir("default").last_relist = 0.0  # (instead of waiting RELIST_IDLE)
    with pytest.raises(leaseq.Empty):
        q.get(block=False)
    assert len(names(tmp_path, "trash")) == 1


def _scan(store: Any, now: float) -> list[Any]:
    from leaseq.stores.file._view import scan

    return scan(store._core.qdir("default"), F.enc_t(now), "l")


def test_a_reused_file_left_with_its_old_record_is_quarantined_not_delivered(make, tmp_path):
    # Non-durable mode, power loss: the rename of a reused file reached the disk but
    # its new content did not, so it still holds the acked message's record.
    q = make()
    q.put("old")
    lease = q.get(block=False)
    [leased] = names(tmp_path, "leased")
    stale = (qdir(tmp_path) / "leased" / leased).read_bytes()
    q.ack(lease)
    q.put("new")
    [ready] = names(tmp_path, "ready")
    (qdir(tmp_path) / "ready" / ready).write_bytes(stale)
    with pytest.raises(leaseq.Empty):
        q.get(block=False)
    [dead] = q.dead_letters()
    assert dead.last_error.startswith("corrupt: stale content")


# -- reading message files -------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "O_NOATIME"), reason="O_NOATIME is Linux's")
def test_a_claim_leaves_the_files_access_time_alone(make, tmp_path):
    q = make()
    q.put("v")
    [ready] = names(tmp_path, "ready")
    path = qdir(tmp_path) / "ready" / ready
    st = os.stat(path)
    os.utime(path, ns=(st.st_mtime_ns - 10**9, st.st_mtime_ns))  # read since: relatime updates
    lease = q.get(block=False)
    [leased] = names(tmp_path, "leased")
    assert os.stat(qdir(tmp_path) / "leased" / leased).st_atime_ns == st.st_mtime_ns - 10**9
    assert lease.value == "v"


def test_a_reader_refused_o_noatime_reads_without_it(make, monkeypatch):
    noatime = getattr(os, "O_NOATIME", 0)
    if not noatime:
        pytest.skip("O_NOATIME is Linux's")
    real_open = os.open

    def not_the_owner(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & noatime:
            raise PermissionError(1, "Operation not permitted")
        return real_open(path, flags, *args, **kw)

    q = make()
    q.put("a")
    q.put("b")
    monkeypatch.setattr(os, "open", not_the_owner)
    assert [q.get(block=False).value for _ in range(2)] == ["a", "b"]
    assert q.store._core.qdir("default").rdflags == os.O_RDONLY
