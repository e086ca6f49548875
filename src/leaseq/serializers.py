"""How durable stores turn values into stored data and back (DESIGN §2, "Values").

A *codec* maps a value to ``str`` or ``bytes`` and back:

* ``"json"`` (the default): ``bytes`` pass through untouched (stored as bytes);
  every other value is JSON text. A value JSON cannot hold raises ``TypeError``
  when it is encoded, so a store encodes before it writes anything.
* ``"pickle"``: any picklable value, as bytes. Opt-in, for trusted data only:
  unpickling runs code chosen by whoever wrote the store.
* any object with ``dumps(value)`` and ``loads(data)``: used as it is.

The ``str``/``bytes`` distinction is part of the stored form (SQLite keeps TEXT
and BLOB apart). Stores that hold only bytes (files) use ``pack``/``unpack``,
which add a one-byte tag.
"""

from __future__ import annotations

import json
import json.scanner
import pickle
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from leaseq.errors import ConfigurationError

__all__ = ["Codec", "JsonCodec", "PickleCodec", "Serializer", "get_codec"]


@runtime_checkable
class Serializer(Protocol):
    """Anything with ``dumps``/``loads`` (the ``json`` and ``pickle`` modules qualify)."""

    def dumps(self, value: Any) -> Any: ...

    def loads(self, data: Any) -> Any: ...


class Codec:
    """Base class: ``encode`` a value to ``str | bytes``, ``decode`` it back."""

    name = "custom"

    def encode(self, value: Any) -> str | bytes:
        raise NotImplementedError

    def decode(self, data: str | bytes) -> Any:
        raise NotImplementedError

    def pack(self, value: Any) -> bytes:
        """Encode to bytes only, tagged so ``unpack`` restores str vs bytes."""
        data = self.encode(value)
        if isinstance(data, bytes):
            return b"b" + data
        return b"s" + data.encode("utf-8")

    def unpack(self, data: bytes) -> Any:
        """Inverse of ``pack``."""
        body = data[1:]
        if data[:1] == b"b":
            return self.decode(body)
        return self.decode(body.decode("utf-8"))


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_decoder = json.JSONDecoder()
#: The scanner JSONDecoder.decode runs after two whitespace regex matches: text
#: this codec wrote has no surrounding whitespace, so a value that scans to its
#: end is decoded; anything else takes the full (checking) path.
_scan: Any = json.scanner.make_scanner(_decoder)  # type: ignore[arg-type]


def _json_decode(text: str) -> Any:
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError):
        return _decoder.decode(text)  # raises the usual JSONDecodeError
    if end != len(text):
        return _decoder.decode(text)
    return value


def _json_encoder() -> Callable[[Any], str]:
    """``str`` of a value, with our options. The C encoder made once where there is
    one (``JSONEncoder.encode`` builds one, and a closure, on every call). It keeps
    no record of the containers it is inside (that record would be shared by
    threads), so a circular value ends in ``RecursionError`` instead of
    ``ValueError``; ``JsonCodec.encode`` reports both as ``TypeError``."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _encoder.encode
    # The arguments JSONEncoder.iterencode gives it (CPython 3.11-3.13).
    pieces = make(
        None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return lambda value: "".join(pieces(value, 0))


_json_encode = _json_encoder()


class JsonCodec(Codec):
    """JSON text for values, bytes untouched. Tuples come back as lists (JSON has no tuple)."""

    name = "json"

    def encode(self, value: Any) -> str | bytes:
        if type(value) is bytes:
            return value
        try:
            return _json_encode(value)
        except TypeError as exc:
            raise TypeError(
                f"value of type {type(value).__name__} cannot be stored as JSON ({exc}); "
                "pass bytes, convert it, or open the store with serializer='pickle' "
                "(trusted data only)"
            ) from None
        except (ValueError, RecursionError) as exc:  # circular references, NaN-free JSON
            raise TypeError(f"value cannot be stored as JSON: {exc}") from None

    def decode(self, data: str | bytes) -> Any:
        if isinstance(data, bytes):
            return data
        return _json_decode(data)


class PickleCodec(Codec):
    """Pickle (highest protocol). Only for data written by someone you trust."""

    name = "pickle"

    def encode(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError) as exc:
            raise TypeError(f"value cannot be pickled: {exc}") from None

    def decode(self, data: str | bytes) -> Any:
        if isinstance(data, str):
            data = data.encode("utf-8")
        return pickle.loads(data)


class _ObjectCodec(Codec):
    """Wraps a user object with ``dumps``/``loads``."""

    def __init__(self, serializer: Any) -> None:
        self._serializer = serializer
        self.name = getattr(serializer, "__name__", type(serializer).__name__)

    def encode(self, value: Any) -> str | bytes:
        data = self._serializer.dumps(value)
        if isinstance(data, (str, bytes)):
            return data
        if isinstance(data, (bytearray, memoryview)):
            return bytes(data)
        raise TypeError(
            f"serializer {self.name}.dumps returned {type(data).__name__}; it must return "
            "str or bytes"
        )

    def decode(self, data: str | bytes) -> Any:
        return self._serializer.loads(data)


_BY_NAME: dict[str, type[Codec]] = {"json": JsonCodec, "pickle": PickleCodec}


def get_codec(serializer: Any = None) -> Codec:
    """The codec for ``serializer``: None or ``"json"``, ``"pickle"``, a ``Codec``, or any
    object with ``dumps``/``loads``. Raises ConfigurationError (a ValueError) for an
    unknown name, TypeError for anything else."""
    if serializer is None:
        return JsonCodec()
    if isinstance(serializer, Codec):
        return serializer
    if isinstance(serializer, str):
        cls = _BY_NAME.get(serializer)
        if cls is None:
            raise ConfigurationError(
                f"unknown serializer {serializer!r}; use 'json', 'pickle' or an object "
                "with dumps/loads"
            )
        return cls()
    if callable(getattr(serializer, "dumps", None)) and callable(
        getattr(serializer, "loads", None)
    ):
        return _ObjectCodec(serializer)
    raise TypeError(
        f"serializer must be 'json', 'pickle' or an object with dumps/loads, not "
        f"{type(serializer).__name__}"
    )
