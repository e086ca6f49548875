"""``file:///path/to/dir`` — a durable queue with no database: one file per message.

``leaseq.Queue("file:///var/spool/jobs")`` keeps each message in its own file
and changes its state with an atomic ``rename()``: put writes the record into
``tmp/`` and renames it into ``ready/``; a claim renames it from ``ready/`` into
``leased/`` (two claimers race for one ``rename``: the loser gets
``FileNotFoundError`` and moves on to the next file); ack renames it into
``trash/``, where the next put reuses the file (see the limits). File
names encode the delivery order (priority, the head stack, availability time,
operation sequence), so a sorted listing *is* the order, and the lease's
expiry, attempt, token and owner, so a claim is one rename with no rewrite. A
lease is judged by its expiry fixed at claim time, never by the enqueue time.

Options (keyword or URL query): ``durable=True`` (``?durable=1``) fsyncs each
record after it is written and before it is renamed into place, and the
directory after every rename; ``serializer=`` as for every durable store (JSON
by default, ``bytes`` untouched, ``"pickle"`` opt-in).

What it guarantees: exactly one holder per message across threads and
processes; ids unique across processes and hosts (``leaseq._core.ids``);
records carry a checksum, so a torn or corrupt file is moved to the dead
letters with the reason ``corrupt: ...`` and never retried forever; no
background thread is needed for correctness (expiry is judged when read).

Limits, honestly:

* **Local POSIX filesystems only** (Linux, macOS: ext4, XFS, APFS, tmpfs, ZFS).
  It relies on atomic ``rename()`` within one filesystem, ``O_APPEND`` writes,
  ``flock()`` and a shared ``mmap()`` of one small file. On **NFS** renames
  are atomic on the server but client attribute and directory caches make
  other clients see files late or stale, ``flock`` may be emulated or
  ignored, and a shared mapping is not shared between hosts: do not share
  one directory between hosts over NFS (or SMB); use ``sqlite://`` on one
  host or ``redis://``/``postgresql://`` across hosts. Windows is not
  supported.
* Lease expiry across processes uses each process's clock: hosts' clocks
  must agree (one host: they do).
* Keyed puts, keyed lease operations, ``put_many``, ``maxsize``, requeue,
  purge and prune take a short ``flock`` on the queue; keyless put, claim,
  ack, release, renew and dead-letter take no cross-process lock.
* ``put_many`` and ``publish`` (across queues) are all or none: every put is
  decided first (refusals raise before anything is written), new records are
  staged invisibly in ``tmp/``, a journal (``<root>/journal/``) commits the
  batch, then the steps are applied. A process killed after the commit leaves
  the batch to be *rolled forward* by whoever next takes a target queue's
  flock, opens the directory, or lists a queue (a claim that finds nothing,
  at most once a second): until then the queues it reached show their
  copies and the others not yet (never lost in part). ``maxsize`` counts
  files under the lock; a claim or release racing with the count can make it
  off by the number of moves in flight.
* Results ledger: ``ack``/``dead_letter`` with an outcome take the queue's
  flock, write the key's outcome file (``results/``, replaced atomically,
  fsynced in durable mode) and only then remove or kill the message. A crash
  between the two leaves the message live (its lease expires) with its outcome
  already recorded: the redelivery's worker sees the outcome and acks without
  running the handler. A keyless lease's expiry takeover takes no flock, so
  an ack racing the very end of its lease can record the outcome and then
  raise ``LeaseLost``: the same state as that crash. ``get_outcome`` reads one
  file; ``prune_outcomes`` lists ``results/`` (O(n)).
* A keyed message that dies (dead letter, release or expiry on its last
  attempt) hands its buffered follow-up on as a fresh READY message of the
  key; a lease that expired on its last attempt does so when something next
  looks at the key or claims. A crash right between the death and that step
  loses the follow-up (its file stays unused in ``follow/``).
* Cross-process wake-ups: a waiter's process polls the queue's change log and
  directory times every ``POLL_INTERVAL`` (20 ms) while, and only while,
  someone waits, so another process's put wakes a blocked ``get`` within about
  20 ms (a lease expiring in another process: within ``LEASE_SCAN``, 1 s).
  Each process keeps a cached view of ``ready/`` and ``leased/`` refreshed
  from an append-only change log of new ready names (a claim reads it only
  when a shared-memory tick that every writer sets after its append moved),
  so a claim never sorts or lists the directory; other processes' leases are
  re-listed from ``leased/`` (small) at most once a second, or when a claim
  finds nothing. A message whose producer was killed between its rename and
  its log entry is found by the next full listing (when a claim finds
  nothing, at most once a second, and every 30 s regardless). The log is
  rotated past 16 MiB; the rotating process ends the old one with a line that
  says so. A writer killed right after its log line but before its tick, or a
  rotating one before its last line: readers notice within ``LEASE_SCAN``.
* Acked files are not unlinked at once: an ack renames the file into
  ``trash/`` and puts (of any process) reuse those files, because on ext4 and
  the like (worse when mounted with ``discard``) unlinking a file whose blocks
  were written back costs several times a rename, and a reused inode also
  saves the put's allocation. trash/ holds at most ``TRASH_MAX`` (8,192)
  files per queue (beyond, acks unlink); each full listing (a claim that
  finds nothing, at most once a second) trims it to ``TRASH_KEEP`` (1,024).
  So an idle queue keeps up to about 1,024 small files (4 KiB each on most
  filesystems) of acked messages' old content on disk until reused: do not
  rely on an ack to erase a value from the disk.
* Reads (``stats``, ``keys``, ``dead_letters``, ``count_*``, ``maxsize``
  checks) list the directories: O(n) in the number of messages.
* History: a claim is recorded in the lease's file name only; it is written
  to the message's notes when something else happens to it (release, expiry
  taken over, death, update), so histories read like ``memory://``'s.
  Owners are at most 60 characters once escaped.
* Without ``durable``, a power loss can leave a renamed but empty or torn
  record: its checksum fails and it becomes a dead letter (``corrupt: ...``).
  The change log is never fsynced (it is a hint; listings recover it).
* After ``fork()`` the child gets its own locks and writer id; open new
  queues in the child rather than waiting on ones inherited from the parent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote

from leaseq.errors import ConfigurationError
from leaseq.serializers import get_codec
from leaseq.stores.file._core import POLL_INTERVAL, get_core
from leaseq.stores.file._store import FileStore

__all__ = ["POLL_INTERVAL", "FileStore", "open_file"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def open_file(parts: SplitResult, **options: Any) -> FileStore:
    """Open ``file:///abs/path`` (or ``file://localhost/abs/path``); options
    ``durable=`` and ``serializer=`` (``durable`` also as ``?durable=1``)."""
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(
            f"file:// store URL {parts.geturl()!r} names host {parts.netloc!r}; the file "
            "store is local only: use file:///absolute/path"
        )
    path = unquote(parts.path)
    if not path:
        raise ConfigurationError("file:// needs a directory: file:///path/to/dir")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    durable = options.pop("durable", None)
    if durable is None:
        flag = query.pop("durable", "0").lower()
        if flag not in _TRUE | _FALSE:
            raise ConfigurationError(f"file:// option durable={flag!r}: use 1 or 0")
        durable = flag in _TRUE
    serializer = options.pop("serializer", query.pop("serializer", None))
    for name in list(options) + list(query):
        raise ConfigurationError(f"file:// store has no option {name!r} (durable, serializer)")
    codec = get_codec(serializer)
    url = f"file://{path}" + ("?durable=1" if durable else "")
    return FileStore(get_core(path, bool(durable)), codec, url)
