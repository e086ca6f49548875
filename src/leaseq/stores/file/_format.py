"""What the ``file://`` store writes: file names that sort in delivery order, and records.

Names (ASCII, fixed-width fields first, so a sorted listing is the order):

* ready: ``PPPP H TTTTTTTTTTTTTTTT SSSSSSSSSSSSSSSS.attempts.max.flags.id`` where
  ``PPPP`` is ``1000 - priority`` (higher priority sorts first), ``H`` is ``a``
  for the head and ``b`` for the line, ``T`` the availability time (the line:
  ascending; the head, a stack: ``MAX - join time``), ``S`` the operation
  sequence (the head: ``MAX - seq``, so equal times put the later operation
  first). The first 37 characters are the sort key.
* leased: ``EEEE…SSSS….attempts.max.flags.id.PPPP.avail.claimed.token.owner``
  (``E`` the lease expiry, fixed at claim: a lease is judged by its claim time).

Times are the IEEE-754 bits of the float (sign-adjusted, 16 hex digits): they
sort like the floats and convert back exactly, so no rounding moves a deadline.
* dead: ``DDDD…SSSS….attempts.max.flags.id.PPPP.avail`` (``D`` the death time).

Flags: ``k`` the message has its own key (stored in the record), ``n`` a notes
file (last error, history) exists. Records carry a CRC so a torn or corrupt file
is recognised and quarantined instead of retried forever.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import NamedTuple
from urllib.parse import quote, unquote

__all__ = [
    "DeadName",
    "LeasedName",
    "ReadyName",
    "Record",
    "dead_name",
    "dec_t",
    "decode_record",
    "enc_t",
    "encode_record",
    "head_sortkey",
    "leased_name",
    "parse_dead",
    "parse_leased",
    "parse_ready",
    "ready_name",
]

MAXS = 16**16 - 1
SORTKEY = 37  # 4 (priority) + 1 (head/line) + 16 (time) + 16 (sequence)
MAGIC = b"LQF1"
_HDR = struct.Struct(">4sII")  # magic, crc32 of the rest, header length
_SEAL = struct.Struct(">4sI")  # magic, crc32 of the rest: journals and outcome files


def seal(magic: bytes, body: bytes) -> bytes:
    """``body`` behind a 4-byte ``magic`` and its CRC32, so a torn or foreign file
    is told apart (``unseal``)."""
    return _SEAL.pack(magic, zlib.crc32(body)) + body


def unseal(magic: bytes, data: bytes) -> bytes | None:
    """The body ``seal(magic, body)`` wrote, or None when ``data`` is torn or foreign."""
    if len(data) < _SEAL.size:
        return None
    got, crc = _SEAL.unpack_from(data)
    body = data[_SEAL.size :]
    if got != magic or zlib.crc32(body) != crc:
        return None
    return body


_F64 = struct.Struct(">d")
_U64 = struct.Struct(">Q")
_SIGN = 1 << 63
_MASK = _SIGN - 1
_pack_d, _unpack_d = _F64.pack, _F64.unpack
_pack_q, _unpack_q = _U64.pack, _U64.unpack
_unpack_hdr = _HDR.unpack_from
_pack_dd = struct.Struct(">dd").pack
MAX_OWNER = 60
_new = tuple.__new__


def enc_t(t: float) -> int:
    """A time as a 64-bit int whose order is the float order and that converts back
    exactly (the IEEE bits, sign-adjusted): names sort right and times round-trip."""
    if t > 0.0:  # (every real time: the bits with the sign bit set)
        v: int = _unpack_q(_pack_d(t))[0] | _SIGN
        return v
    bits = int.from_bytes(_F64.pack(t))
    return bits ^ MAXS if bits & _SIGN else bits | _SIGN


def dec_t(v: int) -> float:
    t: float = _unpack_d(_pack_q(v & _MASK if v & _SIGN else v ^ MAXS))[0]
    return t


def dec_hex(h: str) -> float:
    """``dec_t(int(h, 16))``, shorter for a positive time (see ``hex_pair``)."""
    if h >= "8":
        t: float = -_unpack_d(bytes.fromhex(h))[0]
        return t
    return dec_t(int(h, 16))


def hex_pair(a: float, b: float) -> tuple[str, str]:
    """The 16 hex digits of ``enc_t(a)`` and of ``enc_t(b)``. For a positive time
    (every real one) the encoding is its bits with the sign bit set: the bits of
    its negation, which one ``struct`` pack gives for both."""
    if a > 0.0 and b > 0.0:
        h = _pack_dd(-a, -b).hex()
        return h[:16], h[16:]
    return f"{enc_t(a):016x}", f"{enc_t(b):016x}"


def ready_name(
    prio: int, head: bool, t: int, seq: int, attempts: int, ma: int | None, flags: str, mid: str
) -> str:
    """``t`` is ``enc_t`` of the availability (line) or join (head) time."""
    if head:
        return (
            f"{1000 - prio:04d}a{MAXS - t:016x}{MAXS - seq:016x}"
            f".{attempts}.{'' if ma is None else ma}.{flags}.{mid}"
        )
    return (
        f"{1000 - prio:04d}b{t:016x}{seq:016x}.{attempts}.{'' if ma is None else ma}.{flags}.{mid}"
    )


def head_sortkey(prio: int, t: int, seq: int) -> str:
    """The sort key an expired lease has: the head of its priority, joined at expiry."""
    return f"{1000 - prio:04d}a{MAXS - t:016x}{MAXS - seq:016x}"


def ready_avail(name: str) -> int:
    """The encoded availability time of a ready name."""
    t = int(name[5:21], 16)
    return MAXS - t if name[4] == "a" else t


class ReadyName(NamedTuple):
    prio: int
    head: bool
    avail: int
    attempts: int
    ma: int | None
    flags: str
    mid: str


def parse_ready(name: str) -> ReadyName:
    attempts, ma, flags, mid = name[SORTKEY + 1 :].split(".")
    return ReadyName(
        1000 - int(name[:4]),
        name[4] == "a",
        ready_avail(name),
        int(attempts),
        int(ma) if ma else None,
        flags,
        mid,
    )


def encode_owner(owner: str | None) -> str:
    if owner is None:
        return "-"
    enc = "=" + quote(owner, safe="").replace(".", "%2E")
    if len(enc) > MAX_OWNER:
        raise ValueError(
            f"owner {owner[:40]!r}... is too long for the file:// store "
            f"(at most {MAX_OWNER} characters once escaped)"
        )
    return enc


def decode_owner(enc: str) -> str | None:
    return None if enc == "-" else unquote(enc[1:])


def leased_name(
    exp: int,
    seq: int,
    attempts: int,
    ma: int | None,
    flags: str,
    mid: str,
    prio: int,
    avail: int,
    claimed: int,
    token: str,
    owner_enc: str,
) -> str:
    return (
        f"{exp:016x}{seq:016x}.{attempts}.{'' if ma is None else ma}.{flags}.{mid}"
        f".{1000 - prio:04d}.{avail:016x}.{claimed:016x}.{token}.{owner_enc}"
    )


class LeasedName(NamedTuple):
    exp: int
    seq: int
    attempts: int
    ma: int | None
    flags: str
    mid: str
    prio: int
    avail: int
    claimed: int
    token: str
    owner_enc: str


def parse_leased(name: str) -> LeasedName:
    attempts, ma, flags, mid, prio, avail, claimed, token, owner = name[33:].split(".")
    return LeasedName(
        int(name[:16], 16),
        int(name[16:32], 16),
        int(attempts),
        int(ma) if ma else None,
        flags,
        mid,
        1000 - int(prio),
        int(avail, 16),
        int(claimed, 16),
        token,
        owner,
    )


def dead_name(
    died: int, seq: int, attempts: int, ma: int | None, flags: str, mid: str, prio: int, avail: int
) -> str:
    return (
        f"{died:016x}{seq:016x}.{attempts}.{'' if ma is None else ma}.{flags}.{mid}"
        f".{1000 - prio:04d}.{avail:016x}"
    )


class DeadName(NamedTuple):
    died: int
    seq: int
    attempts: int
    ma: int | None
    flags: str
    mid: str
    prio: int
    avail: int


def parse_dead(name: str) -> DeadName:
    attempts, ma, flags, mid, prio, avail = name[33:].split(".")
    return DeadName(
        int(name[:16], 16),
        int(name[16:32], 16),
        int(attempts),
        int(ma) if ma else None,
        flags,
        mid,
        1000 - int(prio),
        int(avail, 16),
    )


def name_id(name: str) -> str:
    """The message id of any ready/leased/dead name (the fourth dotted field)."""
    return name.split(".", 5)[4]


class Record(NamedTuple):
    """A message file's content: what never changes while the message lives."""

    mid: str
    key: str
    created_at: float
    payload: bytes  # the codec's packed value


def encode_record(mid: str, key: str | None, created_at: float, payload: bytes) -> bytes:
    """Bytes of a message file: magic, CRC, header (id, created, key) and the value."""
    kj = "" if key is None else json.dumps(key)
    head = f"{mid}\t{created_at!r}\t{kj}".encode()
    body = head + payload
    return _HDR.pack(MAGIC, zlib.crc32(body), len(head)) + body


class CorruptRecord(Exception):
    """A file that is not a whole, intact record (reason in ``args[0]``)."""


def decode_record(data: bytes) -> Record:
    """Parse a message file; ``CorruptRecord`` when torn, truncated or damaged."""
    if len(data) < 12:
        raise CorruptRecord(f"truncated record ({len(data)} bytes)")
    magic, crc, hlen = _unpack_hdr(data)
    if magic != MAGIC:
        raise CorruptRecord("not a leaseq record (bad magic)")
    body = data[12:]
    if zlib.crc32(body) != crc or hlen > len(body):
        raise CorruptRecord("checksum mismatch (torn or damaged write)")
    try:
        mid, created, kj = body[:hlen].decode().split("\t")
        key = mid if not kj else json.loads(kj)
        return _new(Record, (mid, key, float(created), body[hlen:]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRecord(f"unreadable header: {exc}") from None


def decode_keyless(data: bytes) -> tuple[str, float, bytes]:
    """``decode_record`` for the claim's hot path: (id, created_at, payload), with
    the same checks and errors, in fewer steps when the record has no key (its
    header is ``ID TAB CREATED TAB``)."""
    try:
        magic, crc, hlen = _unpack_hdr(data)
    except struct.error:
        magic = None
    if magic == MAGIC:
        body = data[12:]
        if zlib.crc32(body) == crc and hlen <= len(body):
            parts = body.split(b"\t", 2)
            if len(parts) == 3 and len(parts[0]) + len(parts[1]) + 2 == hlen:
                try:
                    return parts[0].decode(), float(parts[1]), parts[2]
                except (ValueError, UnicodeDecodeError):
                    pass
    rec = decode_record(data)  # (it says why not, or reads a record with a key)
    return rec.mid, rec.created_at, rec.payload
