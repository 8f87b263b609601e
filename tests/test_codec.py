"""The codec the Redis backend stores values with (server_state/backends/_codec.py):
exact round trips of stored forms, refusals that name the key path, and the
pickle rules (signed, opt-in, never unpickled by the tagged codec)."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import fractions
import hmac
import math
import pathlib
import pickle
import socket
import subprocess
import sys
import textwrap
import threading
import types
import uuid
import zoneinfo
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrsistent import PMap, PSet, PVector, pdeque, plist, pmap, pset, pvector

from server_state import (
    FrozenCounter,
    FrozenDefaultDict,
    FrozenDeque,
    FrozenDict,
    FrozenList,
    ServerStateError,
    ServerStatePayloadError,
    ServerStateTypeError,
)
from server_state._values import _PDEQUE, _PLIST, freeze, unchanged
from server_state.backends._codec import make_codec

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

KEY = "cfg"
TAGGED = make_codec()
SIGNED = make_codec("pickle", signing_key="a shared secret")
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.IntEnum):
    S = 1
    M = 2


class Perm(enum.Flag):
    R = 1
    W = 2
    X = 4


class Outer:
    class Inner(enum.Enum):
        A = 1


class MyModel:
    """What an app might store that the tagged format does not know."""

    def __init__(self, n: int = 0) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return type(other) is MyModel and other.n == self.n

    def __hash__(self) -> int:
        return hash(self.n)


_PYRSISTENT = (PVector, PMap, PSet, *_PLIST, _PDEQUE)


def roundtrip(value: Any, codec: Any = TAGGED) -> tuple[Any, Any]:
    stored = freeze(value, KEY)
    return stored, codec.decode(KEY, codec.encode(KEY, stored))


def assert_exact(a: Any, b: Any, where: str = "value") -> None:
    """The same type at every level, frozen containers labelled with the key,
    and leaves a reader cannot tell apart (``unchanged``)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, (FrozenList, FrozenDict)):
        assert a._ss_key == b._ss_key == KEY, where
    if isinstance(a, FrozenDeque):
        assert a.maxlen == b.maxlen, where
    if isinstance(a, FrozenDefaultDict):
        assert a.default_factory is b.default_factory, where
    if isinstance(a, PMap):
        assert len(a) == len(b), where
        for k, v in a.items():
            assert_exact(v, b[k], f"{where}[{k!r}]")
            assert unchanged(frozenset([k]), frozenset(k2 for k2 in b if k2 == k)), f"{where} key {k!r}"
    elif isinstance(a, dict):
        assert len(a) == len(b), where
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
            assert_exact(ka, kb, f"{where} key {ka!r}")
            assert_exact(va, vb, f"{where}[{ka!r}]")
    elif isinstance(a, (list, tuple, PVector, *_PLIST, _PDEQUE)):
        assert len(a) == len(b), where
        if isinstance(a, _PDEQUE):
            assert a.maxlen == b.maxlen, where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_exact(x, y, f"{where}[{i}]")
    elif isinstance(a, (frozenset, PSet)):
        assert unchanged(frozenset(a), frozenset(b)), where
    else:
        assert unchanged(a, b), f"{where}: {a!r} != {b!r}"


def has_pyrsistent(value: Any) -> bool:
    if isinstance(value, _PYRSISTENT):
        return True
    if isinstance(value, dict):
        return any(has_pyrsistent(k) or has_pyrsistent(v) for k, v in value.items())
    if isinstance(value, (list, tuple, frozenset)):
        return any(map(has_pyrsistent, value))
    return False


def check(value: Any, codec: Any = TAGGED) -> Any:
    """The contract: ``unchanged(stored, decode(encode(stored)))`` and the
    same types at every level. (``unchanged`` compares pyrsistent values by
    identity, so for those the structural check is the contract.)"""
    stored, back = roundtrip(value, codec)
    assert_exact(stored, back)
    if not has_pyrsistent(stored):
        assert unchanged(stored, back)
    return back


# -- explicit round trips -------------------------------------------------------------------

SCALARS: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int": -17,
    "int64 max": 2**63 - 1,
    "uint64 max": 2**64 - 1,
    "int > 64 bits": 2**200 + 3,
    "negative int > 64 bits": -(2**64) - 1,
    "int64 min - 1": -(2**63) - 1,
    "float": 0.1,
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "-0.0": -0.0,
    "complex": complex(1.5, -0.0),
    "complex nan": complex(math.nan, math.inf),
    "str": "héllo ☃ 😀",
    "empty str": "",
    "lone surrogate": "a\ud800b",
    "bytes": b"\x00\xff" * 10,
    "bytearray (stored as bytes)": bytearray(b"abc"),
    "date": dt.date(2024, 2, 29),
    "date min": dt.date.min,
    "datetime naive": dt.datetime(2024, 5, 1, 9, 30, 15, 123456),
    "datetime max": dt.datetime.max,
    "datetime utc": dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
    "datetime offset": dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    "datetime odd offset": dt.datetime(
        2024, 5, 1, tzinfo=dt.timezone(-dt.timedelta(hours=3, microseconds=7))
    ),
    "datetime named offset": dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
    "datetime zoneinfo": dt.datetime(2024, 7, 1, 12, tzinfo=PARIS),
    "datetime fold=1": dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    "datetime naive fold=1": dt.datetime(2024, 10, 27, 2, 30, fold=1),
    "time": dt.time(23, 59, 59, 999999),
    "time tz fold": dt.time(1, 2, 3, 4, tzinfo=dt.UTC, fold=1),
    "time zoneinfo": dt.time(8, tzinfo=PARIS),
    "timedelta": dt.timedelta(days=-3, seconds=5, microseconds=6),
    "timedelta max": dt.timedelta.max,
    "timezone": dt.timezone(dt.timedelta(hours=-2), "Somewhere"),
    "timezone utc": dt.UTC,
    "decimal": decimal.Decimal("2.50"),
    "decimal -0.00": decimal.Decimal("-0.00"),
    "decimal exponent": decimal.Decimal("1E+7"),
    "decimal digits": decimal.Decimal("3.14159265358979323846264338327950288419716939937510"),
    "decimal nan": decimal.Decimal("NaN"),
    "decimal snan payload": decimal.Decimal("-sNaN42"),
    "decimal -inf": decimal.Decimal("-Infinity"),
    "fraction": fractions.Fraction(-22, 7),
    "fraction big": fractions.Fraction(2**100 + 1, 3**70),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "range": range(3, -10, -2),
    "ellipsis": ...,
    "path": pathlib.Path("/srv/data/x.csv"),
    "pure posix path": pathlib.PurePosixPath("a/b"),
    "pure windows path": pathlib.PureWindowsPath(r"C:\Users\x"),
    "enum": Color.BLUE,
    "int enum": Size.M,
    "nested enum": Outer.Inner.A,
    "flag": Perm.R,
    "composite flag": Perm.R | Perm.X,
    "empty flag": Perm(0),
}

CONTAINERS: dict[str, Any] = {
    "list": [1, "a", None, 2.5],
    "empty list": [],
    "nested lists": [[1, [2, [3, []]]], [4.0]],
    "tuple": (1, [2, {"a": (3,)}]),
    "empty tuple": (),
    "dict": {"b": 1, "a": 2},
    "dict order": {3: "c", 1: "a", 2: "b"},
    "list of dicts": [{"user": f"u{i}", "at": dt.datetime(2024, 1, 1, 0, i % 60)} for i in range(100)],
    "long list of ints": list(range(1000)),
    "long list of floats with zeros": [0.0, -0.0, math.nan] * 50,
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", (1, 2), frozenset({3})}),
    "set of mixed types": {0, "0", 0.5, b"0", None},
    "deque": collections.deque([1, [2]], maxlen=5),
    "deque unbounded": collections.deque([1, 2, 3]),
    "deque maxlen 0": collections.deque(maxlen=0),
    "counter": collections.Counter("mississippi"),
    "counter of mixed values": collections.Counter({"a": 2.5, "b": -1}),
    "defaultdict list": collections.defaultdict(list, {"a": [1]}),
    "defaultdict int": collections.defaultdict(int, {1: 2}),
    "defaultdict none": collections.defaultdict(None, {1: 2}),
    "ordered dict (stored as dict)": collections.OrderedDict([("z", 1), ("a", 2)]),
    "pvector": pvector([1, [2, 3], {"a": 4}]),
    "empty pvector": pvector(),
    "long pvector (pure-Python)": pvector(range(200)),
    "short pure-Python pvector": pvector(range(200)).delete(0, 190),
    "pvector of pvectors": pvector([pvector([1]), pmap({"a": pvector([2])})]),
    "pmap": pmap({"a": [1], 2: (3,)}),
    "large pmap": pmap({i: str(i) for i in range(2000)}),
    "pset": pset([1, "a", (2, 3)]),
    "plist": plist([1, [2]]),
    "empty plist": plist(),
    "pdeque": pdeque([1, 2, 3], maxlen=3),
    "pvector inside a list (read form)": [pvector([1, 2]), pmap({"a": 1})],
    "everything nested": {
        "models": [{"name": "m", "size": Size.S, "tags": frozenset({"x"}), "when": dt.date(2024, 1, 1)}],
        (1, "two"): collections.deque([collections.Counter("ab")], maxlen=2),
        Color.RED: (decimal.Decimal("1.0"), fractions.Fraction(1, 3), uuid.UUID(int=5)),
        None: [collections.defaultdict(list, {"k": [(1, 2)]})],
    },
}

NUMPY: dict[str, Any] = {
    "np.float64": np.float64(1.5),
    "np.float64 -0.0": np.float64(-0.0),
    "np.float32 nan": np.float32("nan"),
    "np.float16": np.float16(0.1),
    "np.longdouble": np.longdouble("0.1"),
    "np.int8": np.int8(-3),
    "np.uint64": np.uint64(2**64 - 1),
    "np.int64": np.int64(-(2**63)),
    "np.complex128": np.complex128(1 - 2j),
    "np.complex64": np.complex64(3j),
    "np.bool_": np.bool_(True),
    "np.str_": np.str_("héllo"),
    "np.str_ with trailing NUL": np.str_("a\x00"),
    "np.bytes_": np.bytes_(b"ab"),
    "np.datetime64 D": np.datetime64("2024-01-01", "D"),
    "np.datetime64 ns": np.datetime64("2024-01-01T12:00:00.123456789", "ns"),
    "np.datetime64 NaT": np.datetime64("NaT", "s"),
    "np.timedelta64 ms": np.timedelta64(5, "ms"),
    "array float": np.linspace(0, 1, 7),
    "array 2-d": np.arange(12, dtype=np.int32).reshape(3, 4),
    "array Fortran order": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "array non-contiguous": np.arange(20)[::3],
    "array 0-d": np.array(3.5),
    "array empty": np.zeros((0, 3)),
    "array big-endian": np.arange(5, dtype=">i4"),
    "array bool": np.array([True, False]),
    "array str": np.array(["a", "bcd"]),
    "array bytes": np.array([b"a", b"bc"]),
    "array datetime64": np.array(["2024-01-01", "NaT"], dtype="datetime64[s]"),
    "array timedelta64": np.array([1, 2], dtype="timedelta64[us]"),
    "array complex": np.array([1 + 2j, np.nan]),
    "array float16": np.array([0.1, -0.0], dtype=np.float16),
    "list of numpy scalars": [np.int64(1), np.float64(2.0), np.bool_(False)],
}

PANDAS: dict[str, Any] = {
    "Timestamp": pd.Timestamp("2024-01-01 12:00:00.123456789"),
    "Timestamp tz": pd.Timestamp("2024-03-31 03:30", tz="Europe/Paris"),
    "Timestamp utc": pd.Timestamp("2024-01-01", tz="UTC"),
    "Timestamp s unit": pd.Timestamp("2024-01-01").as_unit("s"),
    "Timestamp far (s unit)": pd.Timestamp(np.datetime64("3000-01-01", "s")),
    "Timedelta": pd.Timedelta(5, "ms"),
    "Timedelta ns": pd.Timedelta(123456789),
    "NaT": pd.NaT,
    "NA": pd.NA,
    "frame of floats": pd.DataFrame(np.random.default_rng(0).random((50, 4)), columns=list("abcd")),
    "frame, default labels": pd.DataFrame(np.arange(6).reshape(3, 2)),
    "frame of mixed dtypes": pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.5, math.nan, -0.0],
            "s": ["x", None, "z"],
            "b": [True, False, True],
            "t": pd.date_range("2024", periods=3, freq="h"),
            "tz": pd.date_range("2024", periods=3, tz="Europe/Paris"),
            "td": pd.to_timedelta([1, 2, 3], unit="s"),
            "cat": pd.Categorical(["a", "b", "a"]),
            "Int64": pd.array([1, None, 3], dtype="Int64"),
            "obj": pd.Series(["x", 1, None], dtype=object),
        }
    ),
    "frame with string index": pd.DataFrame({"a": [1, 2]}, index=pd.Index(["r1", "r2"], name="row")),
    "frame with object index": pd.DataFrame({"a": [1, 2]}, index=pd.Index(["r1", 2], dtype=object)),
    "frame with MultiIndex": pd.DataFrame(
        {"a": [1, 2]}, index=pd.MultiIndex.from_tuples([(1, "x"), (2, "y")], names=["n", "s"])
    ),
    "frame with MultiIndex columns": pd.DataFrame(
        [[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])
    ),
    "frame with DatetimeIndex freq": pd.DataFrame({"a": [1.0, 2.0]}, index=pd.date_range("2024", periods=2)),
    "frame with RangeIndex step": pd.DataFrame({"a": [1, 2]}, index=pd.RangeIndex(10, 14, 2, name="r")),
    "frame with duplicate columns": pd.DataFrame([[1, 2]], columns=["a", "a"]),
    "frame with tuple and int labels": pd.DataFrame({("a", 1): [1], 2: [2.0]}),
    "frame, named column axis": pd.DataFrame({"a": [1]}).rename_axis("cols", axis=1),
    "frame of object cells": pd.DataFrame({"o": [[1], {"a": 2}, (3,), dt.date(2024, 1, 1), b"x"]}),
    "frame of str with NA": pd.DataFrame(
        {"s": pd.array(["a", None], dtype=pd.StringDtype("python", na_value=pd.NA))}
    ),
    "frame of periods and intervals": pd.DataFrame(
        {"p": pd.period_range("2024", periods=2, freq="M"), "i": pd.interval_range(0, 2)}
    ),
    "empty frame": pd.DataFrame(),
    "frame of no columns": pd.DataFrame(index=[1, 2]),
    "frame of no rows": pd.DataFrame({"a": pd.Series([], dtype="float32")}),
    "series": pd.Series([1.0, 2.0], name="s"),
    "series unnamed": pd.Series([1, 2]),
    "series tuple name": pd.Series([1, 2], name=("a", 3)),
    "series of categories": pd.Series(pd.Categorical(["a", "b"]), index=["x", "y"]),
    "series of objects": pd.Series([None, 1, "a"], dtype=object),
    "index": pd.Index([1, 2, 3], name="n"),
    "range index": pd.RangeIndex(5),
    "datetime index": pd.date_range("2024", periods=3, freq="D", tz="UTC"),
    "categorical index": pd.CategoricalIndex(["x", "y"]),
    "frame in a dict": {"df": pd.DataFrame({"a": [1]}), "ts": [pd.Timestamp("2024-01-01")]},
}


@pytest.mark.parametrize("value", SCALARS.values(), ids=SCALARS.keys())
def test_scalars_round_trip_exactly(value: Any) -> None:
    back = check(value)
    check([value, (value,), {"k": value}])
    if isinstance(value, enum.Enum):
        assert back is value  # the very member


@pytest.mark.parametrize("value", CONTAINERS.values(), ids=CONTAINERS.keys())
def test_containers_round_trip_exactly(value: Any) -> None:
    check(value)
    check({"wrapped": [value]} if not isinstance(value, _PYRSISTENT) else pvector([value]))


def test_stored_forms_come_back_as_the_frozen_types() -> None:
    back = check(
        [
            [1],
            {"a": 1},
            collections.deque([1], 3),
            collections.Counter("a"),
            collections.defaultdict(set),
            {1},
            bytearray(b"x"),
        ]
    )
    assert [type(v) for v in back] == [
        FrozenList,
        FrozenDict,
        FrozenDeque,
        FrozenCounter,
        FrozenDefaultDict,
        frozenset,
        bytes,
    ]
    assert back[2].maxlen == 3 and back[4].default_factory is set
    with pytest.raises(TypeError):
        back[0].append(2)  # read-only, as the mirror's values must be


@pytest.mark.parametrize("value", NUMPY.values(), ids=NUMPY.keys())
def test_numpy_values_round_trip_exactly(value: Any) -> None:
    back = check(value)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and back.shape == value.shape
        # The memory order is kept (a strided view comes back as a C-contiguous copy).
        if value.flags.f_contiguous and not value.flags.c_contiguous:
            assert back.flags.f_contiguous and not back.flags.c_contiguous
        else:
            assert back.flags.c_contiguous
        assert back.flags.writeable  # a copy of its own, not a view of the payload
        np.testing.assert_array_equal(back, value)
    elif isinstance(value, np.generic):
        assert back.dtype == value.dtype and back.tobytes() == value.tobytes()


@pytest.mark.parametrize("value", PANDAS.values(), ids=PANDAS.keys())
def test_pandas_values_round_trip_exactly(value: Any) -> None:
    back = check(value)
    if isinstance(value, pd.DataFrame):
        assert list(back.dtypes) == list(value.dtypes)
        assert back.index.identical(value.index) and back.columns.identical(value.columns)
        for (_, s), (_, t) in zip(value.items(), back.items(), strict=True):
            if s.dtype == object:
                assert list(map(type, s)) == list(map(type, t))  # 1 stays 1, not 1.0 or "1"
    if isinstance(value, pd.Timestamp):
        assert back.unit == value.unit and repr(back.tzinfo) == repr(value.tzinfo)


def test_pandas_nat_nested_is_the_singleton() -> None:
    # (unchanged([NaT], [NaT]) is False: see the report; the value itself is the very NaT.)
    back = TAGGED.decode(KEY, TAGGED.encode(KEY, freeze([pd.NaT, (pd.NaT,)], KEY)))
    assert back[0] is pd.NaT and back[1][0] is pd.NaT and type(back) is FrozenList


def test_a_decoded_frame_is_writable_and_independent() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    back = check(df)
    back.iloc[0, 0] = 9.0
    assert df.iloc[0, 0] == 1.0


def test_dict_keys_of_any_hashable_type_keep_their_type_and_order() -> None:
    keys: list[Any] = [
        3,
        "3",
        3.5,
        -0.0,
        True,
        None,
        b"3",
        (1, "a"),
        (1, (2, (3,))),
        frozenset({1, 2}),
        dt.date(2024, 1, 1),
        dt.datetime(2024, 1, 1, 12),
        dt.timedelta(1),
        decimal.Decimal("1.50"),
        fractions.Fraction(1, 3),
        uuid.UUID(int=1),
        Color.RED,
        Size.M,  # (Size.S == True)
        2**80,
        complex(1, 2),
        np.int64(7),
        pd.Timestamp("2024-01-02"),
        pathlib.PurePosixPath("p"),
        range(2),
    ]
    value = {k: i for i, k in enumerate(keys)}
    assert len(value) == len(keys)
    back = check(value)
    assert [type(k) for k in back] == [type(k) for k in keys]
    assert list(back.values()) == list(range(len(keys)))
    assert math.copysign(1.0, list(back)[3]) == -1.0


def test_nested_deep_values_round_trip() -> None:
    value: Any = "leaf"
    for i in range(150):
        value = [value] if i % 3 else ({"k": value},)
    check(value)


def test_plain_values_take_the_fast_path() -> None:
    assert TAGGED.encode(KEY, 5) == b"M\x05"
    assert TAGGED.encode(KEY, "hi") == b"M\xa2hi"
    assert TAGGED.decode(KEY, b"M\x05") == 5
    assert TAGGED.encode(KEY, freeze([1, 2], KEY)) == b"M\x92\x01\x02"


def test_encoding_from_many_threads_at_once() -> None:
    values = [freeze({"n": i, "items": list(range(i)), "t": (i, str(i))}, KEY) for i in range(200)]
    out: dict[int, bytes] = {}

    def work(start: int) -> None:
        for i in range(start, 200, 4):
            out[i] = TAGGED.encode(KEY, values[i])

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, v in enumerate(values):
        assert_exact(v, TAGGED.decode(KEY, out[i]))


# -- the property ---------------------------------------------------------------------------

_ZONES = st.sampled_from(
    [None, dt.UTC, dt.timezone(dt.timedelta(hours=-7, minutes=-30)), dt.timezone(dt.timedelta(0), "Z"), PARIS]
)
hashables = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=6),
        st.binary(max_size=6),
        st.dates(),
        st.sampled_from([Color.RED, Color.BLUE, Size.S, Perm.R | Perm.W, Outer.Inner.A]),
        st.uuids(),
        st.fractions(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(tuple),
        st.frozensets(children, max_size=3),
    ),
    max_leaves=6,
)
leaves = st.one_of(
    hashables,
    st.floats(),  # nan, inf, -0.0
    st.complex_numbers(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=_ZONES),
    st.times(timezones=_ZONES),
    st.timedeltas(),
    st.integers(min_value=-(2**130), max_value=2**130),
    st.sampled_from([np.int16(-5), np.float64(-0.0), np.bool_(False), np.datetime64("2024-01-01", "ms")]),
    st.builds(lambda xs: np.array(xs, dtype=np.float64), st.lists(st.floats(), max_size=4)),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(hashables, children, max_size=4),
        st.frozensets(hashables, max_size=3),
        st.sets(hashables, max_size=3),
        st.builds(collections.deque, st.lists(children, max_size=3), st.sampled_from([None, 3, 5])),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=3).map(collections.Counter),
        st.builds(
            collections.defaultdict,
            st.sampled_from([None, list, int, dict, set]),
            st.dictionaries(hashables, children, max_size=3),
        ),
        st.lists(children, max_size=4).map(pvector),
        st.dictionaries(st.text(max_size=3), children, max_size=3).map(pmap),
        st.frozensets(hashables, max_size=3).map(pset),
        st.lists(children, max_size=3).map(plist),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_property_any_nested_stored_value_round_trips_exactly(value: Any) -> None:
    check(value)


@settings(max_examples=60, deadline=None)
@given(values)
def test_property_the_pickle_codec_round_trips_the_same_values(value: Any) -> None:
    stored = freeze(value, KEY)
    back = SIGNED.decode(KEY, SIGNED.encode(KEY, stored))
    assert type(back) is type(stored)
    if not has_pyrsistent(stored):
        assert unchanged(stored, back)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_property_arbitrary_bytes_decode_or_are_refused_cleanly(data: bytes) -> None:
    for payload in (b"M" + data, data):
        try:
            TAGGED.decode(KEY, payload)
        except ServerStatePayloadError as e:
            assert e.key == KEY


# -- refusals -------------------------------------------------------------------------------


def refusal(value: Any, key: str = KEY) -> str:
    stored = freeze(value, key)
    with pytest.raises(ServerStateTypeError) as info:
        TAGGED.encode(key, stored)
    assert isinstance(info.value, TypeError) and info.value.key == key
    message = str(info.value)
    assert "SERVER_STATE_SIGNING_KEY" in message and "plain data" in message
    return message


def test_an_unencodable_value_names_the_key_path() -> None:
    message = refusal({"models": [1, 2, MyModel()]})
    assert message.startswith("server_state['cfg']['models'][2]: cannot store a ")
    assert "MyModel in Redis" in message


@pytest.mark.parametrize(
    ("value", "path", "what"),
    [
        ([lambda: 1], "server_state['cfg'][0]", "function"),
        ({"s": "a socket, made by the test"}, "server_state['cfg']['s']", "socket"),
        ((1, (2, MyModel())), "server_state['cfg'][1][1]", "MyModel"),
        ({MyModel(): 1}, "server_state['cfg'] (the key", "MyModel"),
        ({"a": {frozenset([MyModel()])}}, "server_state['cfg']['a'] (an item of a frozenset)", "MyModel"),
        ([np.array([1, "a"], dtype=object)], "server_state['cfg'][0]", "dtype object"),
        ([np.array([(1, 2.0)], dtype="i4,f8")], "server_state['cfg'][0]", "structured"),
        ({"d": collections.defaultdict(lambda: 0)}, "server_state['cfg']['d']", "default_factory"),
        ([type("Sub", (str,), {})("x")], "server_state['cfg'][0]", "Sub"),
        ([type("Sub", (int,), {})(1)], "server_state['cfg'][0]", "Sub"),
        ([collections.namedtuple("P", "x y")(1, 2)], "server_state['cfg'][0]", "P"),
        (
            [dt.datetime(2024, 1, 1, tzinfo=__import__("dateutil.tz").tz.gettz("UTC"))],
            "server_state['cfg'][0]",
            "tzinfo",
        ),
        ([pd.DataFrame({"a": [1, MyModel(3)]})], "server_state['cfg'][0]", "column 'a', row 1"),
        ([pd.Period("2024-01", "M")], "server_state['cfg'][0]", "Period"),
        ([pathlib.Path], "server_state['cfg'][0]", "type"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_refusals_name_the_path_and_the_type(value: Any, path: str, what: str) -> None:
    with socket.socket() as sock:
        if what == "socket":
            value = {"s": sock}
        message = refusal(value)
    assert message.startswith(path), message
    assert what in message.split(": cannot store", 1)[1]


def test_an_enum_not_reachable_by_name_is_refused_when_written() -> None:
    def local() -> Any:
        class Local(enum.Enum):
            A = 1

        return Local.A

    message = refusal([local()])
    assert "define the Enum at the top level of a module" in message


def test_a_too_deep_value_is_refused() -> None:
    value: Any = []
    for _ in range(3000):
        value = [value]
    with pytest.raises(ServerStateTypeError, match="nested too deep"):
        TAGGED.encode(KEY, value)


def test_a_refused_encode_leaves_nothing_behind() -> None:
    big = list(range(10_000))
    with pytest.raises(ServerStateTypeError):
        TAGGED.encode(KEY, freeze([big, MyModel()], KEY))
    assert TAGGED.encode(KEY, 1) == b"M\x01"  # no bytes of the failed attempt


# -- decoding refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"M",
        b"X\x01",
        b"J[1]",
        b"M\xc1",  # a byte msgpack never uses
        b"M\x92\x01",  # an array of 2 with one item
        b"M\x01\x02",  # extra data
        b"M" + msgpack.packb(msgpack.ExtType(99, b"")),  # unknown tag
        b"M" + msgpack.packb(msgpack.ExtType(15, b"\x01")),  # a short datetime
        b"M" + msgpack.packb(msgpack.ExtType(14, b"\x00\x00\x0d\x01")),  # month 13
        b"M" + msgpack.packb(msgpack.ExtType(3, msgpack.packb([[1]]))),  # a list in a frozenset
        b"M" + msgpack.packb(msgpack.ExtType(30, msgpack.packb(["O", b"\x00" * 8]))),  # an object dtype
        b"M" + msgpack.packb(msgpack.ExtType(31, msgpack.packb(["<f8", [3], "C", b"\x00" * 8]))),  # short
        b"M" + msgpack.packb(msgpack.ExtType(6, msgpack.packb(["os.system", {}]))),  # a factory by name
        b"M" + msgpack.packb(msgpack.ExtType(18, b"Z../../etc/passwd")),
        b"M" + msgpack.packb(msgpack.ExtType(45, msgpack.packb([None, None, [], b"not arrow"]))),
    ],
)
def test_corrupt_payloads_are_refused_with_a_payload_error(data: bytes) -> None:
    with pytest.raises(ServerStatePayloadError) as info:
        TAGGED.decode(KEY, data)
    assert info.value.key == KEY and str(info.value).startswith("server_state['cfg']: ")


def test_every_truncation_of_a_real_payload_is_refused() -> None:
    data = TAGGED.encode(
        KEY,
        freeze({"a": [1, (2, dt.datetime(2024, 1, 1, tzinfo=PARIS))], "df": pd.DataFrame({"x": [1.5]})}, KEY),
    )
    for n in range(len(data)):
        with pytest.raises(ServerStatePayloadError):
            TAGGED.decode(KEY, data[:n])


def test_an_enum_of_a_module_not_imported_is_refused_and_not_imported() -> None:
    module = types.ModuleType("server_state_test_palette")
    module.Hue = enum.Enum("Hue", "RED GREEN", module=module.__name__)  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        data = TAGGED.encode(KEY, freeze([module.Hue.GREEN], KEY))  # type: ignore[attr-defined]
        assert TAGGED.decode(KEY, data)[0] is module.Hue.GREEN  # type: ignore[attr-defined]
    finally:
        del sys.modules[module.__name__]
    with pytest.raises(ServerStatePayloadError, match="'server_state_test_palette' is not imported"):
        TAGGED.decode(KEY, data)
    assert module.__name__ not in sys.modules


def test_an_enum_naming_an_importable_module_never_imports_it() -> None:
    # antigravity opens a web browser when imported: the codec must not import it.
    assert "antigravity" not in sys.modules
    data = b"M" + msgpack.packb(msgpack.ExtType(25, msgpack.packb(["antigravity", "Color", "RED"])))
    with pytest.raises(ServerStatePayloadError, match="never imported"):
        TAGGED.decode(KEY, data)
    assert "antigravity" not in sys.modules


def test_an_enum_reference_to_something_else_is_refused() -> None:
    for module, qualname, member in [
        ("os", "system", "x"),  # a function, not an Enum
        (__name__, "Color", "GREEN"),  # no such member
        (__name__, "Color", 1),  # a value for a non-Flag
        (__name__, "Nope", "RED"),
    ]:
        data = b"M" + msgpack.packb(msgpack.ExtType(25, msgpack.packb([module, qualname, member])))
        with pytest.raises(ServerStatePayloadError):
            TAGGED.decode(KEY, data)


# -- the pickle rules -----------------------------------------------------------------------

UNPICKLED: list[str] = []


def _plant() -> MyModel:
    UNPICKLED.append("unpickled!")
    return MyModel(1)


class Bomb:
    """Unpickling it runs ``_plant``: the proof that something was unpickled."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_plant, ())


def test_pickle_needs_a_signing_key() -> None:
    for key in (None, "", b""):
        with pytest.raises(ServerStateError, match="signing key") as info:
            make_codec("pickle", signing_key=key)
        assert "SERVER_STATE_SIGNING_KEY" in str(info.value) and "configure(" in str(info.value)


def test_an_unknown_serializer_names_the_valid_ones() -> None:
    with pytest.raises(ServerStateError, match=r"'tagged'.*'pickle'"):
        make_codec("json")


def test_codecs_name_themselves() -> None:
    assert TAGGED.name == "tagged" and SIGNED.name == "pickle"
    assert "secret" not in repr(SIGNED)


def test_the_tagged_codec_never_unpickles_a_planted_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    planted = SIGNED.encode(KEY, Bomb())  # validly signed, even
    assert planted[:1] == b"P"

    def no_loads(*_: Any, **__: Any) -> Any:
        raise AssertionError("pickle.loads was called")

    monkeypatch.setattr(pickle, "loads", no_loads)
    monkeypatch.setattr(pickle, "Unpickler", no_loads)
    for data in (planted, b"P" + pickle.dumps(Bomb())):
        with pytest.raises(ServerStatePayloadError, match="pickle") as info:
            TAGGED.decode(KEY, data)
        assert "SERVER_STATE_SERIALIZER=pickle" in str(info.value)
    assert UNPICKLED == []


def test_a_pickle_with_a_wrong_or_missing_signature_is_refused() -> None:
    body = pickle.dumps(Bomb())
    other = make_codec("pickle", signing_key=b"another secret")
    good = SIGNED.encode(KEY, Bomb())
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    for data in (
        other.encode(KEY, Bomb()),  # signed with another key
        b"P" + body,  # no signature
        b"P" + b"\x00" * 32 + body,  # a made-up one
        tampered,
        b"P" + hmac.digest(b"a shared secret", b"", "sha256")[:10],  # truncated
    ):
        with pytest.raises(ServerStatePayloadError, match="signing keys of the replicas must match") as info:
            SIGNED.decode(KEY, data)
        assert info.value.key == KEY and "server_state['cfg']" in str(info.value)
    assert UNPICKLED == []
    assert SIGNED.decode(KEY, good) == MyModel(1) and UNPICKLED == ["unpickled!"]
    UNPICKLED.clear()


def test_the_pickle_codec_stores_what_tagged_cannot_and_reads_tagged_data() -> None:
    stored = freeze({"m": [MyModel(2)], "t": (1, [2])}, KEY)
    back = SIGNED.decode(KEY, SIGNED.encode(KEY, stored))
    assert back == stored and type(back) is FrozenDict and type(back["t"][1]) is FrozenList
    assert back["t"][1]._ss_key == KEY
    for value in (CONTAINERS["everything nested"], PANDAS["frame of mixed dtypes"]):
        check(value, SIGNED)
        tagged = TAGGED.encode(KEY, freeze(value, KEY))
        assert_exact(freeze(value, KEY), SIGNED.decode(KEY, tagged))


def test_the_pickle_codec_relabels_a_payload_copied_from_another_key() -> None:
    data = SIGNED.encode("other", freeze([[1]], "other"))
    back = SIGNED.decode(KEY, data)
    assert back._ss_key == KEY and back[0]._ss_key == KEY


def test_the_pickle_codec_refuses_what_cannot_be_pickled() -> None:
    with pytest.raises(ServerStateTypeError, match=r"server_state\['cfg'\]: cannot store this FrozenList"):
        SIGNED.encode(KEY, freeze([lambda: 1], KEY))


def test_the_pickle_codec_refuses_corrupt_tagged_data_too() -> None:
    with pytest.raises(ServerStatePayloadError):
        SIGNED.decode(KEY, b"M\xc1")
    with pytest.raises(ServerStatePayloadError):
        SIGNED.decode(KEY, b"Q")


# -- lazy imports ---------------------------------------------------------------------------


def test_numpy_and_pandas_are_imported_only_for_their_values() -> None:
    code = textwrap.dedent(
        """
        import sys
        from server_state._values import freeze
        from server_state.backends._codec import make_codec
        c = make_codec()
        v = freeze({"a": [1, 2.5, "x", (1,), {2}], "b": __import__("datetime").date(2024, 1, 1)}, "k")
        assert c.decode("k", c.encode("k", v)) == v
        heavy = [m for m in ("numpy", "pandas", "pyarrow") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
