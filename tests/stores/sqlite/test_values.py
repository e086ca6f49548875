"""Values in a durable store: JSON by default, bytes untouched, pickle or custom on request."""

from __future__ import annotations

import json
import pickle
import sqlite3
from dataclasses import dataclass

import pytest

import leaseq
from leaseq.serializers import JsonCodec, PickleCodec, get_codec


@dataclass
class Point:
    x: int
    y: int


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path}/q.db"


def test_json_values_round_trip(url):
    with leaseq.Queue(url) as q:
        value = {"s": "é", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
        q.put(value)
        assert q.get(block=False).value == value


def test_bytes_pass_through_untouched(url):
    raw = bytes(range(256))
    with leaseq.Queue(url) as q:
        q.put(raw, key="b")
        q.put("text", key="t")
        assert q.get(block=False).value == raw
        got = q.get(block=False).value
        assert got == "text" and isinstance(got, str)


def test_a_value_json_cannot_hold_raises_type_error_before_anything_is_stored(url):
    with leaseq.Queue(url) as q:
        with pytest.raises(TypeError, match="cannot be stored as JSON"):
            q.put(Point(1, 2))
        with pytest.raises(TypeError):
            q.put_many([1, {2, 3}])  # the second one fails: nothing at all is stored
        assert q.qsize() == 0
        assert q.stats().total == 0


def test_pickle_is_opt_in(url):
    with leaseq.Queue(url, serializer="pickle") as q:
        q.put(Point(1, 2))
        assert q.get(block=False).value == Point(1, 2)


def test_any_object_with_dumps_and_loads(url):
    class Upper:
        def dumps(self, value):
            return json.dumps(value).upper()

        def loads(self, data):
            return json.loads(data.lower())

    with leaseq.Queue(url, serializer=Upper()) as q:
        q.put("abc")
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        stored = conn.execute("SELECT value FROM leaseq_messages").fetchall()
        conn.close()
        assert stored == [('"ABC"',)]  # what is stored is the serializer's text
        assert q.get(block=False).value == "abc"


def test_codecs_directly():
    assert isinstance(get_codec(None), JsonCodec)
    assert isinstance(get_codec("pickle"), PickleCodec)
    assert get_codec(json).decode(get_codec(json).encode([1])) == [1]
    with pytest.raises(ValueError, match="unknown serializer"):
        get_codec("yaml")
    with pytest.raises(TypeError, match="dumps/loads"):
        get_codec(42)
    codec = JsonCodec()
    for value in (b"\x00bytes", "text", {"a": [1]}):
        assert codec.unpack(codec.pack(value)) == value
    assert PickleCodec().decode(PickleCodec().encode(Point(3, 4))) == Point(3, 4)
    assert pickle.loads(PickleCodec().encode(1)) == 1


def test_a_serializer_returning_neither_str_nor_bytes_is_a_type_error(url):
    class Bad:
        def dumps(self, value):
            return 42

        def loads(self, data):
            return data

    with leaseq.Queue(url, serializer=Bad()) as q, pytest.raises(TypeError, match="str or bytes"):
        q.put("x")
