"""One queue's directory: its files, its change log, and this process's cached view.

Layout of ``<root>/<queue>/``::

    ready/  leased/  dead/    one file per message; the name is its place and state
    tmp/                      records being written (renamed into ready/ when whole)
    keys/                     one file per explicit key -> the id of its live message
    notes/                    last error and history of a message (written rarely)
    follow/                   a leased message's buffered follow-up
    results/                  the results ledger: one outcome file per key
    trash/                    acked message files, unlinked in batches when idle
    work/                     rewrites in progress (crash-recovered under the lock)
    log                       append-only: names that appeared in ready/
    tick                      16 bytes, mmap()ed: changed after every append to log
    lock                      flock()ed for keyed and multi-step operations

The cache (heaps of names) is this process's view of ready/ and leased/. New
ready names (puts, releases, requeues) are learnt by tailing ``log`` instead
of listing the directory, so a claim costs the same with 100 or 100,000
waiting messages: every writer, after its append, sets ``tick`` (shared
memory) to a value never set before (its writer id and count); a claim
compares it with the value it last saw, a memory read, and reads the log
only when it changed. A writer killed between its append and its tick is
read within ``LEASE_SCAN`` (the log's size is checked then too). Claims are
not logged (that would cost a write each): other processes' leases are learnt
by listing leased/ (small: the messages in flight) when a claim finds nothing
and leased/ changed, and every ``LEASE_SCAN`` seconds anyway (one ``stat``; a
listing if it changed). Entries other processes removed are found lazily: the
claim's ``rename`` fails with ``FileNotFoundError`` and the entry is dropped.
The log is rotated by unlinking it and appending "WID rotated" to the old one;
whoever reads that line (or sees the old log unlinked: writers at once,
readers within ``LEASE_SCAN``) opens the new log and lists the directories
once, which also catches anything a crashed writer renamed into place but
never logged. A full listing also happens when a claim finds nothing and the last one is
older than ``RELIST_IDLE`` seconds, and every ``RELIST_ANYWAY`` s.
"""

from __future__ import annotations

import fcntl
import heapq
import mmap
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from leaseq.stores.file import _format as F

__all__ = ["QDir"]

LOG_LIMIT = 16 << 20  # rotate the change log beyond this many bytes
RELIST_IDLE = 1.0  # an idle claim re-lists the directories at most this often (seconds)
RELIST_ANYWAY = 30.0  # and a busy one at least this often
LEASE_SCAN = 1.0  # other processes' leases are looked for at least this often (seconds)
#: Acked files wait in trash/ to be reused by puts (see ``discard``); beyond this
#: many an ack unlinks instead, and a claim that finds nothing trims trash/ to
#: ``TRASH_KEEP`` (at most ``TRASH_SWEEP`` unlinks a time).
TRASH_MAX = 8192
TRASH_KEEP = 1024
TRASH_SWEEP = 512
_NOATIME = getattr(os, "O_NOATIME", 0)  # (Linux only)
_lseek, _SEEK_END, _monotonic = os.lseek, os.SEEK_END, time.monotonic
SUBDIRS = ("ready", "leased", "dead", "tmp", "keys", "notes", "follow", "work", "results", "trash")


def due_mark(now_h: str) -> str:
    """What a heap entry (16 hex digits of a time, then a name) is less than when its
    time is ``<= now`` (``now_h``: the 16 hex digits of ``enc_t(now)``): names begin
    with hex digits or a priority's, and every one of them sorts before ``g``."""
    return now_h + "g"


def _read_and_close(fd: int) -> bytes:
    """The whole content of an open file (one read for a usual record); closes ``fd``."""
    try:
        data = os.read(fd, 65536)
        if len(data) == 65536:  # a large record: read the rest
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


class QDir:
    """Paths, file descriptors and the cached view of one queue. Guarded by ``lock``."""

    def __init__(self, base: str, name: str, durable: bool, wid: str) -> None:
        self.name = name
        self.base = base
        self.durable = durable
        self.wid = wid
        for sub in SUBDIRS:
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        self.ready = os.path.join(base, "ready") + "/"
        self.leased = os.path.join(base, "leased") + "/"
        self.dead = os.path.join(base, "dead") + "/"
        self.tmp = os.path.join(base, "tmp") + "/"
        self.keys = os.path.join(base, "keys") + "/"
        self.notes = os.path.join(base, "notes") + "/"
        self.follow = os.path.join(base, "follow") + "/"
        self.work = os.path.join(base, "work") + "/"
        self.results = os.path.join(base, "results") + "/"
        self.trash = os.path.join(base, "trash") + "/"
        self.journal = os.path.join(os.path.dirname(base), "journal") + "/"
        #: Called (with the flock held) to finish publishes a crashed process left
        #: half applied (``_journal``); set by the store.
        self.on_flock: Callable[[QDir], None] | None = None
        self._fdepth = 0
        self.logpath = os.path.join(base, "log")
        self.lock = threading.Lock()
        self._lockfd = os.open(os.path.join(base, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        # Directory descriptors: renames, unlinks and opens use the *at() calls, so
        # the kernel does not walk the whole path on every operation.
        self._dirfds: dict[str, int] = {
            path: os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            for path in (
                self.ready, self.leased, self.dead, self.tmp,
                self.keys, self.notes, self.follow, self.work, self.results, self.trash,
            )
        }  # fmt: skip
        # The hot path's directories, without a dict lookup.
        self.rfd = self._dirfds[self.ready]
        self.lfd = self._dirfds[self.leased]
        self.xfd = self._dirfds[self.trash]
        self.rdflags = os.O_RDONLY | _NOATIME  # reading message files (``read_msg``)
        self.recycle: list[str] = []  # names in trash/ this process may reuse
        self.trash_n = 0  # about how many files trash/ holds
        self.last_trash = 0.0
        self.logfd = -1
        self.log_off = 0
        self.appends = 0
        # The cached view (built by the first claim: a pure producer keeps none).
        self.tracking = False
        #: Claimable, in delivery order: ready names (their first ``SORTKEY`` characters
        #: are the order) and expired leases as ``sort key + "|" + leased name``
        #: (strings, not tuples: a pop compares strings only). Entries that come in
        #: order (a FIFO's puts) are appended to ``rline``, others pushed on ``rheap``;
        #: the next one is the lesser of their heads (``Claims.claim``).
        self.rline: deque[str] = deque()
        self.rheap: list[str] = []
        #: Not yet due: ``hex(available) + ready name``. Leases: the leased names (they
        #: begin with the expiry). Strings sort like the times: a claim compares its
        #: own time's 16 hex digits with their tops (``due_mark``).
        self.dheap: list[str] = []
        self.lheap: list[str] = []
        self.known: set[str] = set()  # ready names in the heaps that may still exist
        self.lknown: set[str] = set()  # leased names likewise
        self.byid: dict[str, tuple[str, str]] = {}  # id -> ("r"|"l", name), lazily checked
        self.held: dict[str, str] = {}  # token -> leased name, for leases made here
        #: Leased name -> its expiry (as a float), for this process's leases of keyless
        #: messages without notes: their ack needs no parsing (``Leases.ack``).
        self.plain: dict[str, float] = {}
        self.last_relist = 0.0
        self.last_leased = 0.0
        self.leased_mtime = 0
        self.seen = (0, 0)  # ready/ and leased/ mtimes after this process's last change
        self.seen_log = 0
        # The change tick: 16 bytes every log writer sets to a value of its own
        # after each append (its writer id, a count), so a claim sees that the log
        # grew by reading shared memory instead of asking the kernel (``sync``).
        fd = os.open(os.path.join(base, "tick"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < 16:
                os.ftruncate(fd, 16)
            self.tickmap = mmap.mmap(fd, 16)
        finally:
            os.close(fd)
        self.ticks = 0
        self.seen_tick = b""
        self._open_log()
        self._clean_tmp()

    def _clean_tmp(self) -> None:
        """Drop half-written records of crashed producers (never renamed into place);
        a record staged by a publish (``NAME~JID``) stays while its journal exists."""
        old = time.time() - 3600
        for name in os.listdir(self.tmp):
            _n, sep, jid = name.rpartition("~J")
            if sep and os.path.exists(self.journal + jid):
                continue
            try:
                if os.stat(self.tmp + name).st_mtime < old:
                    os.unlink(self.tmp + name)
            except FileNotFoundError:
                pass

    # -- file helpers --------------------------------------------------------------
    def fsync_dir(self, path: str) -> None:
        """Persist a rename (durable mode): fsync the directory that changed."""
        os.fsync(self._dirfds[path])

    def write_new(self, dirpath: str, name: str, data: bytes) -> None:
        """Write ``data`` whole into ``tmp/`` then rename it to ``dirpath/name`` (atomic).
        The file is an acked one taken from trash/ when there is one (``discard``)."""
        tmp = f"{name}~{self.wid}"
        tmpfd = self._dirfds[self.tmp]
        fd = self._reuse(tmp, tmpfd)
        reused = fd >= 0
        if not reused:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=tmpfd)
        try:
            os.write(fd, data)
            if reused:
                os.ftruncate(fd, len(data))  # (shrinks within its block: frees nothing)
            if self.durable:
                os.fsync(fd)  # after the data is written, before it becomes visible
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=tmpfd, dst_dir_fd=self._dirfds[dirpath])
        if self.durable:
            self.fsync_dir(dirpath)

    # -- trash: acked files are reused, not unlinked ------------------------------------
    def discard(self, name: str) -> None:
        """The ack's removal of ``leased/name`` (``FileNotFoundError`` if it moved: the
        lease was lost). The file is renamed into trash/, where the next put reuses
        it: on ext4 and the like, unlinking a file whose blocks were allocated
        (anything older than the writeback delay) costs several times a rename,
        and reusing the inode saves the put's allocation too. Durable mode fsyncs
        leased/ after the rename, as after an unlink."""
        fds = self._dirfds
        if self.trash_n < TRASH_MAX:
            os.rename(name, name, src_dir_fd=fds[self.leased], dst_dir_fd=fds[self.trash])
            self.trash_n += 1
            self.recycle.append(name)
        else:
            os.unlink(name, dir_fd=fds[self.leased])
        if self.durable:
            self.fsync_dir(self.leased)

    def acked(self, name: str, mid: str) -> None:
        """``discard(name)`` then ``forget(name, True, mid)``, in one step (the keyless
        ack's hot path)."""
        if self.trash_n < TRASH_MAX:
            os.rename(name, name, src_dir_fd=self.lfd, dst_dir_fd=self.xfd)
            self.trash_n += 1
            self.recycle.append(name)
        else:
            os.unlink(name, dir_fd=self.lfd)
        if self.durable:
            self.fsync_dir(self.leased)
        known = self.lknown
        if name in known:
            known.discard(name)
            byid = self.byid
            hit = byid.get(mid)
            if hit is not None and hit[1] == name:
                del byid[mid]
            if len(self.lheap) > 4 * len(known) + 1024:
                self.lheap = [e for e in self.lheap if e in known]
                heapq.heapify(self.lheap)

    def _reuse(self, tmp: str, tmpfd: int) -> int:
        """A trash file renamed to ``tmp/tmp`` and opened for writing, or -1."""
        trashfd = self._dirfds[self.trash]
        while self.recycle or self._refill():
            try:
                old = self.recycle.pop()
            except IndexError:  # another thread took the last one
                continue
            try:
                os.rename(old, tmp, src_dir_fd=trashfd, dst_dir_fd=tmpfd)
            except FileNotFoundError:  # another process reused it first
                continue
            self.trash_n -= 1
            return os.open(tmp, os.O_WRONLY, dir_fd=tmpfd)
        return -1

    def _refill(self) -> bool:
        """Learn trash/ (other processes' acks too), at most once a second."""
        mono = time.monotonic()
        if mono - self.last_trash < 1.0:
            return False
        self.last_trash = mono
        names = os.listdir(self.trash)
        self.recycle = names
        self.trash_n = len(names)
        return bool(names)

    def sweep(self) -> None:
        """With each full listing (a claim that finds nothing: at most once a second;
        a busy one: every ``RELIST_ANYWAY`` s), unlink trash beyond ``TRASH_KEEP``
        (at most ``TRASH_SWEEP`` files)."""
        if self.trash_n <= TRASH_KEEP:
            return
        names = os.listdir(self.trash)
        trashfd = self._dirfds[self.trash]
        extra = names[TRASH_KEEP : TRASH_KEEP + TRASH_SWEEP]
        for name in extra:
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=trashfd)
        self.recycle = names[:TRASH_KEEP] + names[TRASH_KEEP + TRASH_SWEEP :]
        self.trash_n = len(self.recycle)

    def move(self, src_dir: str, src: str, dst_dir: str, dst: str) -> None:
        """Rename one message file; ``FileNotFoundError`` when someone else moved it first."""
        fds = self._dirfds
        os.rename(src, dst, src_dir_fd=fds[src_dir], dst_dir_fd=fds[dst_dir])
        if self.durable:
            self.fsync_dir(dst_dir)
            if src_dir != dst_dir:
                self.fsync_dir(src_dir)

    def remove(self, dirpath: str, name: str) -> None:
        os.unlink(name, dir_fd=self._dirfds[dirpath])
        if self.durable:
            self.fsync_dir(dirpath)

    def read_at(self, dirpath: str, name: str) -> bytes:
        """Read a whole message file of one of the queue's directories."""
        return self.read_msg(name, self._dirfds[dirpath])

    def read_msg(self, name: str, dir_fd: int) -> bytes:
        """Read a whole message file, leaving its access time alone (``O_NOATIME``:
        a file read for the first time since it was written would otherwise have
        its inode written again, ~2 us on ext4). Whoever does not own the files
        is refused the flag (EPERM): then this process reads without it."""
        try:
            fd = os.open(name, self.rdflags, dir_fd=dir_fd)
        except PermissionError:
            if self.rdflags == os.O_RDONLY:
                raise
            self.rdflags = os.O_RDONLY
            return self.read_msg(name, dir_fd)
        return _read_and_close(fd)

    @staticmethod
    def read(path: str, dir_fd: int | None = None) -> bytes:
        return _read_and_close(os.open(path, os.O_RDONLY, dir_fd=dir_fd))

    @contextmanager
    def flocked(self) -> Iterator[None]:
        """The cross-process lock of multi-step operations (hold ``lock`` first).
        Re-entrant (the depth is guarded by ``lock``). Taking it first finishes
        what crashed processes left half done: rewrites, then publishes."""
        if self._fdepth:
            self._fdepth += 1
            try:
                yield
            finally:
                self._fdepth -= 1
            return
        fcntl.flock(self._lockfd, fcntl.LOCK_EX)
        self._fdepth = 1
        try:
            self._recover_work()
            if self.on_flock is not None:
                self.on_flock(self)
            yield
        finally:
            self._fdepth = 0
            fcntl.flock(self._lockfd, fcntl.LOCK_UN)

    def _recover_work(self) -> None:
        """Finish or undo rewrites a crashed process left half done (see ``rewrite``)."""
        names = os.listdir(self.work)
        if not names:
            return
        news = {n[:-4] for n in names if n.endswith(".new")}
        for n in names:
            if n.endswith(".old"):
                stem, _sep, src = n[:-4].partition("~")
                if stem in news:  # grabbed, never placed: put the original back
                    sub, _, orig = src.partition("~")
                    os.rename(self.work + n, os.path.join(self.base, sub, orig))
                else:  # the new version was placed: the old one is garbage
                    os.unlink(self.work + n)
        for stem in news:
            os.unlink(self.work + stem + ".new")

    def rewrite(self, src_dir: str, src: str, dst_dir: str, dst: str, data: bytes) -> None:
        """Replace message file ``src`` by ``dst`` with new content, crash-safely.

        Only under ``flocked``: write ``work/ID.new``; grab ``src`` by renaming it to
        ``work/ID~dir~src.old`` (``FileNotFoundError`` if it moved); place the new
        file; drop the old. ``_recover_work`` undoes a half-done rewrite.
        """
        stem = F.name_id(src)
        new = self.work + stem + ".new"
        fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        sub = os.path.basename(src_dir.rstrip("/"))
        old = f"{self.work}{stem}~{sub}~{src}.old"
        try:
            os.rename(src_dir + src, old)
        except FileNotFoundError:
            os.unlink(new)
            raise
        os.rename(new, dst_dir + dst)
        os.unlink(old)
        if self.durable:
            self.fsync_dir(dst_dir)
            self.fsync_dir(src_dir)

    # -- the change log ------------------------------------------------------------
    def _open_log(self) -> None:
        self.seen_tick = self.tickmap[:16]  # (before the size: a later append ticks)
        if self.logfd >= 0:
            os.close(self.logfd)
        self.logfd = os.open(self.logpath, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self.log_off = os.fstat(self.logfd).st_size

    def log(self, line: str) -> None:
        """Announce a name that appeared in ready/ ("WID r NAME\\n", one write)."""
        data = line.encode()
        os.write(self.logfd, data)
        tick = self._tick()
        st = os.fstat(self.logfd)
        if st.st_nlink == 0:  # it was rotated: say it again in the new log
            self._say_rotated()  # (in case the rotating process died before it did)
            self._reopen()
            os.write(self.logfd, data)
            tick = self._tick()
            st = os.fstat(self.logfd)
        if st.st_size == self.log_off + len(data):
            # Nobody else wrote meanwhile: nothing to read back. (Another writer's
            # append after the fstat ticks after ours: the tick still changes.)
            self.log_off = st.st_size
            self.seen_tick = tick
        self.appends += 1
        if self.appends & 255 == 0 and st.st_size > LOG_LIMIT:
            with suppress(FileNotFoundError):
                os.unlink(self.logpath)
            self._say_rotated()
            self._reopen()

    def _say_rotated(self) -> None:
        """End the old (unlinked) log with "WID rotated": its readers, who only read
        it on (``sync``), learn from this line that a new log took its place."""
        os.write(self.logfd, f"{self.wid} rotated\n".encode())
        self._tick()

    def _tick(self) -> bytes:
        """After an append to the log: set the change tick to a value never set before
        (this writer's id and count), so whoever last read another value looks."""
        self.ticks += 1
        tick = self.wid.encode() + self.ticks.to_bytes(8, "big")
        self.tickmap[:16] = tick
        return tick

    def _reopen(self) -> None:
        self._open_log()
        if self.tracking:
            self.relist()

    def sync(self) -> None:
        """Bring the cached view up to date with other processes' puts and releases:
        when the change tick moved, a short read of the log's new lines. A rotated
        log says so at its end (``log``); once a second the log's size and link
        count are checked too (a writer killed before its tick, a rotating process
        killed before it said so)."""
        if not self.tracking:
            self.tracking = True
            self.relist()
            return
        tick = self.tickmap[:16]
        if tick != self.seen_tick:  # someone appended since we last read the log
            self.seen_tick = tick  # (before the read: an append after it ticks again)
            size = _lseek(self.logfd, 0, _SEEK_END)
            if size > self.log_off:
                self._read_log(size)
        mono = _monotonic()
        if mono - self.last_relist > RELIST_ANYWAY:
            self.relist()
        elif mono - self.last_leased > LEASE_SCAN:
            if os.fstat(self.logfd).st_nlink == 0:
                self._reopen()
                return
            # A writer killed between its append and its tick: its line is read now.
            size = _lseek(self.logfd, 0, _SEEK_END)
            if size > self.log_off:
                self._read_log(size)
            self.refresh_leased()  # other processes' leases, even while busy

    def _read_log(self, size: int) -> None:
        data = os.pread(self.logfd, size - self.log_off, self.log_off)
        end = data.rfind(b"\n") + 1  # a line is whole once its newline is there
        self.log_off += end
        prefix = self.wid + " r "
        rotated = False
        for line in data[:end].decode(errors="replace").splitlines():
            if line.startswith(prefix):
                continue  # our own change: the cache already has it
            parts = line.split(" ")
            if len(parts) == 3 and parts[1] == "r":
                self.add_ready(parts[2], None)
            elif len(parts) == 2 and parts[1] == "rotated":
                rotated = True
            # anything else is a torn line (a writer died mid-write): a relist covers it
        if rotated:  # follow the new log, list once
            self._reopen()

    def relist(self) -> None:
        """Rebuild the cached view from the directories. The log position is taken
        first: whatever is logged while we list is applied later (idempotently).
        Crashed publishes that reached this queue in part are finished first, and
        trash/ is trimmed."""
        self.pending_publishes()
        self.sweep()
        if os.fstat(self.logfd).st_nlink == 0:
            self._open_log()
        else:
            self.seen_tick = self.tickmap[:16]
            self.log_off = os.fstat(self.logfd).st_size
        self.last_relist = time.monotonic()
        self.rline, self.rheap, self.dheap = deque(), [], []
        self.known = set()
        self.byid = {}
        for name in os.listdir(self.ready):
            self.add_ready(name, None)
        self.relist_leased()

    def relist_leased(self) -> None:
        """Rebuild the view of leased/ (small: the messages in flight). Other
        processes do not log their claims; their leases are learnt here."""
        self.last_leased = time.monotonic()
        try:
            self.leased_mtime = os.stat(self.leased).st_mtime_ns
        except FileNotFoundError:
            self.leased_mtime = 0
        self.lheap = []
        self.lknown = set()
        for name in os.listdir(self.leased):
            self.add_leased(name)
        self.held = {t: n for t, n in self.held.items() if n in self.lknown}
        self.plain = {n: x for n, x in self.plain.items() if n in self.lknown}

    def idle(self) -> bool:
        """A claim found nothing: look again, cheaply. Other processes' leases (which
        may have expired) when leased/ changed; everything at most every RELIST_IDLE
        seconds (a producer killed between its rename and its log line). True when
        something new may be claimable."""
        if time.monotonic() - self.last_relist >= RELIST_IDLE:
            self.relist()
        elif not self.refresh_leased():
            return False
        return bool(self.rline or self.rheap or self.dheap or self.lheap)

    def pending_publishes(self) -> None:
        """Finish publishes a crashed process left half applied (``_journal``): taking
        the flock does it. Called by every full listing (a claim that finds nothing:
        at most once a second)."""
        if self.on_flock is not None and os.listdir(self.journal):
            with self.flocked():
                pass

    def refresh_leased(self) -> bool:
        """Re-list leased/ if another process may have claimed since (it changed, or
        ``LEASE_SCAN`` passed); True when it did."""
        try:
            mtime = os.stat(self.leased).st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        if mtime != self.leased_mtime or time.monotonic() - self.last_leased > LEASE_SCAN:
            self.relist_leased()
            return True
        return False

    # -- the cached view -----------------------------------------------------------
    def add_ready(self, name: str, now: int | None) -> None:
        if name in self.known:
            return
        try:
            avail = F.ready_avail(name)
            mid = F.name_id(name)
        except (ValueError, IndexError):
            return  # not ours
        self.known.add(name)
        self.byid[mid] = ("r", name)
        if now is not None and avail <= now:
            self.push_claimable(name)
        else:
            heapq.heappush(self.dheap, f"{avail:016x}{name}")

    def add_leased(self, name: str, mid: str | None = None) -> None:
        if name in self.lknown:
            return
        try:
            int(name[:32], 16)  # expiry and sequence
            mid = mid or F.name_id(name)
        except (ValueError, IndexError):
            return
        self.lknown.add(name)
        self.byid[mid] = ("l", name)
        heapq.heappush(self.lheap, name)

    def forget(self, name: str, leased: bool, mid: str | None = None) -> None:
        """A name we removed (or found gone): its heap entry is skipped when popped."""
        known = self.lknown if leased else self.known
        if leased:
            self.plain.pop(name, None)
        if name in known:
            known.discard(name)
            mid = mid or F.name_id(name)
            hit = self.byid.get(mid)
            if hit is not None and hit[1] == name:
                del self.byid[mid]
            if leased and len(self.lheap) > 4 * len(known) + 1024:
                self.lheap = [e for e in self.lheap if e in known]
                heapq.heapify(self.lheap)

    def push_claimable(self, entry: str) -> None:
        line = self.rline
        if not line or entry > line[-1]:
            line.append(entry)
        else:
            heapq.heappush(self.rheap, entry)

    def due(self, mark: str) -> None:
        """Move what became claimable at ``mark`` (``due_mark``) into ``rheap``: due
        delayed messages, and expired leases (at the head of their priority, joined
        at their expiry)."""
        dheap, lheap = self.dheap, self.lheap
        while dheap and dheap[0] < mark:
            name = heapq.heappop(dheap)[16:]
            if name in self.known:
                self.push_claimable(name)
        while lheap and lheap[0] < mark:
            name = heapq.heappop(lheap)
            if name in self.lknown:
                exp, seq = int(name[:16], 16), int(name[16:32], 16)
                prio = 1000 - int(name.split(".", 6)[5])
                self.push_claimable(f"{F.head_sortkey(prio, exp, seq)}|{name}")

    def next_due(self, now: int) -> int | None:
        """The earliest future availability or expiry this view knows of."""
        self.due(due_mark(f"{now:016x}"))
        best = None
        dheap, lheap = self.dheap, self.lheap
        while dheap and dheap[0][16:] not in self.known:
            heapq.heappop(dheap)
        while lheap and lheap[0] not in self.lknown:
            heapq.heappop(lheap)
        for heap in (dheap, lheap):
            if heap and (best is None or int(heap[0][:16], 16) < best):
                best = int(heap[0][:16], 16)
        return best

    # -- change detection (the watcher thread; see Core._poll) ----------------------
    def dir_times(self) -> tuple[int, int]:
        try:
            return (os.stat(self.ready).st_mtime_ns, os.stat(self.leased).st_mtime_ns)
        except FileNotFoundError:
            return (0, 0)

    def mark_own(self) -> None:
        """This process changed the directories: not news for its own waiters."""
        self.seen = self.dir_times()

    def foreign_change(self) -> bool:
        """Did another process write since we last looked? (Racy reads are fine: a
        miss is caught at the next poll, a false alarm only makes waiters recheck.)"""
        try:
            size = os.stat(self.logpath).st_size
        except (FileNotFoundError, OSError):
            size = -1  # rotated right now: look again next time
        grew = size > max(self.log_off, self.seen_log)
        self.seen_log = size
        times = self.dir_times()
        if grew or times != self.seen:
            self.seen = times
            return True
        return False

    def after_fork(self) -> None:
        """In a forked child: own locks (an inherited flock description is shared)."""
        self.lock = threading.Lock()
        self.held = {}
        self.plain = {}
        self._fdepth = 0
        os.close(self._lockfd)
        self._lockfd = os.open(os.path.join(self.base, "lock"), os.O_RDWR | os.O_CREAT, 0o644)

    def close(self) -> None:
        for fd in self._dirfds.values():
            os.close(fd)
        self._dirfds.clear()
        if self.logfd >= 0:
            os.close(self.logfd)
            self.logfd = -1
        self.tickmap.close()
        os.close(self._lockfd)
