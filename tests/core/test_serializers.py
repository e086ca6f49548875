"""The JSON codec's fast paths (one C encoder made once; the scanner without the
whitespace passes) give exactly what ``json`` gives, and its errors stay its own."""

from __future__ import annotations

import json

import pytest

from leaseq import serializers
from leaseq.serializers import JsonCodec

STDLIB = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

VALUES = [
    None,
    True,
    3,
    -2.5,
    10**30,
    float("inf"),
    "",
    'héllo ✓ "quoted" \n',
    [],
    {},
    (1, 2),
    {1: "int key", "n": None},
    {"to": "a@b", "nested": {"ok": [True, 1.0, {"deep": ["x"]}]}},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_encode_is_the_stdlib_text_and_decodes_back(value):
    codec = JsonCodec()
    text = codec.encode(value)
    assert text == STDLIB(value)
    assert codec.decode(text) == json.loads(text)


def test_the_fast_encoder_is_in_use():
    # CPython ships _json: the codec must not have fallen back to JSONEncoder.encode.
    assert serializers._json_encode != serializers._encoder.encode


@pytest.mark.parametrize("text", [" [1, 2] ", '{"a": 1}\n', '"x"'])
def test_decode_accepts_what_json_accepts(text):
    assert JsonCodec().decode(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", '{"a":1} extra', "[1,]", "nul"])
def test_decode_rejects_what_json_rejects(text):
    with pytest.raises(json.JSONDecodeError):
        JsonCodec().decode(text)


def test_values_json_cannot_hold_raise_type_error():
    codec = JsonCodec()
    circular: list[object] = []
    circular.append(circular)
    with pytest.raises(TypeError, match="cannot be stored as JSON"):
        codec.encode(circular)
    with pytest.raises(TypeError, match="cannot be stored as JSON"):
        codec.encode({"when": object()})
    assert codec.encode([1]) == "[1]"  # nothing left behind by the failures


def test_bytes_pass_through():
    assert JsonCodec().encode(b"\x00raw") == b"\x00raw"
    assert JsonCodec().decode(b"\x00raw") == b"\x00raw"
