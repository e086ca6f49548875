"""Values (DESIGN §2): ``memory://`` keeps Python objects as they are; stores that
serialize (``store.serializes``) use JSON by default, pass bytes through, and
refuse a value JSON cannot hold with ``TypeError`` before storing anything.

Each test asserts the contract of the kind of store under test, chosen by the
store's own declaration, never by its name.
"""

from __future__ import annotations

import datetime
import decimal

import pytest

JSON_VALUES = [
    None,
    True,
    0,
    -7,
    2**53,
    1.5,
    "",
    "héllo ✓",
    [],
    [1, "two", None, [3.0]],
    {},
    {"to": "a@b", "n": 3, "nested": {"ok": [True, False]}},
]


def _serializes(q) -> bool:
    flag = q.store.serializes
    assert isinstance(flag, bool)
    return flag


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
def test_json_values_round_trip(make_queue, value):
    q = make_queue()
    msg = q.put(value, key="k")
    assert msg.value == value
    assert q.peek("k").value == value
    lease = q.get(block=False)
    assert lease.value == value
    assert lease.message.value == value
    q.ack(lease)


def test_bytes_pass_through_untouched(make_queue):
    q = make_queue()
    raw = bytes(range(256))
    q.put(raw, key="k")
    lease = q.get(block=False)
    assert lease.value == raw
    assert type(lease.value) is bytes


def test_str_and_bytes_stay_apart(make_queue):
    q = make_queue()
    q.put("abc", key="s")
    q.put(b"abc", key="b")
    assert type(q.take("s", block=False).value) is str
    assert type(q.take("b", block=False).value) is bytes


class Opaque:
    """A value no JSON encoder can hold."""


@pytest.mark.parametrize(
    "value",
    [Opaque(), {"when": datetime.datetime(2024, 1, 1)}, [decimal.Decimal("1.5")], {1, 2}],
    ids=["object", "datetime-in-dict", "decimal-in-list", "set"],
)
def test_values_json_cannot_hold(make_queue, value):
    q = make_queue()
    if _serializes(q):
        with pytest.raises(TypeError):
            q.put(value, key="k")
        assert q.stats().total == 0
        assert "k" not in q
    else:
        q.put(value, key="k")
        assert q.get(block=False).value is value  # the very object, no copy


def test_non_json_value_in_put_many_stores_nothing(make_queue):
    q = make_queue()
    if _serializes(q):
        with pytest.raises(TypeError):
            q.put_many(["ok", Opaque()])
        assert q.stats().total == 0
    else:
        obj = Opaque()
        q.put_many(["ok", obj])
        assert [q.get(block=False).value for _ in range(2)][1] is obj


def test_non_json_update_leaves_the_old_value(make_queue):
    q = make_queue()
    q.put({"v": 1}, key="k")
    if _serializes(q):
        with pytest.raises(TypeError):
            q.put(Opaque(), key="k")
        assert q.peek("k").value == {"v": 1}
    else:
        obj = Opaque()
        q.put(obj, key="k")
        assert q.peek("k").value is obj


def test_objects_are_kept_as_they_are_unless_serialized(make_queue):
    q = make_queue()
    value = {"items": [1, 2]}
    q.put(value, key="k")
    got = q.get(block=False).value
    if _serializes(q):
        assert got == value and got is not value  # a decoded copy
    else:
        assert got is value


def test_tuples_come_back_as_lists_when_serialized(make_queue):
    q = make_queue()
    q.put((1, 2), key="k")
    got = q.get(block=False).value
    assert got == ([1, 2] if _serializes(q) else (1, 2))
