"""How the Redis backend turns stored values into bytes and back.

Every payload starts with one marker byte that says how the rest is encoded:

``M`` tagged (the default, and safe to read from anyone who can write to
    Redis): the rest is one msgpack object. msgpack's own types carry None,
    bool, int (64 bits), float (all doubles, NaN, -0.0), str and bytes, and,
    as the stored form has them, ``FrozenList`` (an array) and ``FrozenDict``
    (a map with keys of any type, in order). Everything else is a msgpack
    ext type, whose data is msgpack again or a fixed ``struct``:

    ==  =================  ==============================================
     1  int > 64 bits      signed little-endian bytes
     2  tuple              [items]
     3  frozenset          [items]
     4  FrozenDeque        [maxlen, [items]]
     5  FrozenCounter      {entries}
     6  FrozenDefaultDict  [factory name (a builtin) or None, {entries}]
     7  pvector (C)        [items]
     8  pvector (Python)   [items] (pyrsistent's pure-Python vector)
     9  pmap               {entries}
    10  pset               [items]
    11  plist              [items]
    12  pdeque             [maxlen, [items]]
    13  complex            struct <dd
    14  date               struct <HBB
    15  datetime           struct <HBBBBBI (year … microsecond), then fold + zone unless naive, fold 0
    16  time               struct <BBBI (hour … microsecond), then fold + zone unless naive, fold 0
    17  timedelta          struct <iii (days, seconds, microseconds)
    18  timezone           zone
    19  Decimal            str(value): sign, digits, exponent, NaN/sNaN/Infinity
    20  Fraction           [numerator, denominator]
    21  UUID               16 bytes
    22  range              [start, stop, step]
    23  Ellipsis           nothing
    24  pathlib path       [kind: 0 PurePosixPath, 1 PureWindowsPath, 2 PosixPath, 3 WindowsPath, str]
    25  Enum member        [module, qualname, member name] (a Flag: its value instead of the name)
    30  numpy scalar       [dtype.str, raw bytes]
    31  numpy array        [dtype.str, shape, "C" or "F", raw bytes]
    40  pandas Timestamp   [int in its unit, unit, zone]
    41  pandas Timedelta   [int in its unit, unit]
    42  pandas NaT         nothing
    43  pandas Index       [index, arrow]
    44  pandas Series      [index, name, values, arrow]
    45  pandas DataFrame   [index, columns (an index), [values of each column], arrow]
    46  pandas NA          nothing
    ==  =================  ==============================================

    A fold is one byte (0 or 1); a zone is ``b""`` (naive), ``b"O"`` + <q
    offset in microseconds (``datetime.timezone``), ``b"N"`` + <q + UTF-8
    name (a named ``timezone``) or ``b"Z"`` + UTF-8 key (``ZoneInfo``).

    pandas values are ``["n", numpy array]`` (numpy dtypes but object),
    ``["o", [cells]]`` (object dtype: each cell tagged as above, so mixed
    columns are exact), ``["s", [cells], storage, NaN or NA]`` (the ``str``
    dtype) or ``["a", i]``: column ``i`` of ``arrow``, one Arrow IPC stream
    (or None) for the extension dtypes (category, nullable ints, tz-aware,
    period...). An index is ``[name, freq, values]``, where values may also
    be ``["r", start, stop, step]`` (RangeIndex) or ``["m", Arrow stream]``
    (MultiIndex). What goes through Arrow is read back when encoded and
    refused unless it comes back the same; the other forms are exact by
    construction. Cells come back as the plain forms decoding gives (a
    FrozenList cell as a list), which ``unchanged`` does not tell apart.

    Decoding gives plain containers (list, dict, deque, Counter...) that go
    through ``freeze(value, key)``, which makes them the stored form again.
    An enum's module is looked up in ``sys.modules``, never imported.

``P`` signed pickle (opt-in: ``serializer="pickle"`` with a signing key):
    ``P`` + HMAC-SHA256(signing key, body) + pickle body. The signature is
    checked (``hmac.compare_digest``) before anything is unpickled; the
    tagged codec refuses these payloads without looking further.

numpy, pandas and pyarrow are imported only when a value of theirs is met
(the module its type comes from tells), as in ``_values``.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import fractions
import hashlib
import hmac
import importlib
import pathlib
import pickle
import reprlib
import struct
import sys
import threading
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any, Protocol, cast

import msgpack  # type: ignore[import-untyped]
from pyrsistent import PMap, PSet, PVector, pdeque, plist, pmap, pset, pvector

from .._errors import ServerStateError, ServerStatePayloadError, ServerStateTypeError
from .._pcompat import C_PVECTOR as _C_PVECTOR
from .._pcompat import PDEQUE as _PDEQUE
from .._pcompat import PLISTS as _PLIST
from .._pcompat import PY_PVECTOR as _PY_PVECTOR
from .._pcompat import python_pvector as _python_pvector
from .._values import (
    FrozenCounter,
    FrozenDefaultDict,
    FrozenDeque,
    FrozenDict,
    FrozenList,
    freeze,
    unchanged,
)

__all__ = ["Codec", "decode_items", "encode_items", "make_codec", "map_items"]

_TAGGED = b"M"
_PICKLED = b"P"
_MARK = _TAGGED[0]  # 0x4d: also a msgpack positive fixint, so a Packer can write it
_SIGNATURE = 32  # bytes of an HMAC-SHA256

_HOW_TO_PICKLE = (
    "store plain data (numbers, strings, lists, dicts, dates, numpy arrays, DataFrames...), "
    "or opt into pickle with a signing key: SERVER_STATE_SERIALIZER=pickle and "
    "SERVER_STATE_SIGNING_KEY=<secret>, or server_state.configure(url, serializer='pickle', "
    "signing_key=...), the same key on every replica"
)


class Codec(Protocol):
    """Turns a key's stored value into the bytes kept in Redis, and back."""

    name: str

    def encode(self, key: str, value: Any) -> bytes: ...

    def decode(self, key: str, data: bytes) -> Any: ...


def make_codec(serializer: str = "tagged", signing_key: bytes | str | None = None) -> Codec:
    """The codec named ``serializer``: ``"tagged"`` (the default) or
    ``"pickle"``, which needs ``signing_key``."""
    if serializer == "tagged":
        return _TAGGED_CODEC
    if serializer == "pickle":
        if not signing_key:
            raise ServerStateError(
                "server_state: serializer='pickle' needs a signing key, so that no replica unpickles "
                "data it did not write: set SERVER_STATE_SIGNING_KEY=<secret> or call "
                "server_state.configure(url, serializer='pickle', signing_key=<secret>), with the same "
                "key on every replica."
            )
        return _PickleCodec(signing_key.encode() if isinstance(signing_key, str) else bytes(signing_key))
    raise ServerStateError(
        f"server_state: unknown serializer {serializer!r}: use 'tagged' (the default) or 'pickle' "
        "(with a signing key)."
    )


class _TaggedCodec:
    name = "tagged"

    def encode(self, key: str, value: Any) -> bytes:
        return _encode(key, value)

    def decode(self, key: str, data: bytes) -> Any:
        return _decode(key, data)


class _PickleCodec:
    name = "pickle"

    def __init__(self, signing_key: bytes) -> None:
        self._key = signing_key

    def __repr__(self) -> str:
        return "<server_state pickle codec>"  # never the key

    def encode(self, key: str, value: Any) -> bytes:
        try:
            body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # PicklingError, or TypeError/AttributeError from __reduce__
            raise ServerStateTypeError(
                key,
                f"server_state[{key!r}]: cannot store this {type(value).__name__} in Redis: it cannot be "
                f"pickled ({e}). Store plain data, or objects of classes defined at module level.",
            ) from None
        return _PICKLED + hmac.digest(self._key, body, hashlib.sha256) + body

    def decode(self, key: str, data: bytes) -> Any:
        if data[:1] != _PICKLED:
            return _decode(key, data)
        view = memoryview(data)
        signature, body = view[1 : 1 + _SIGNATURE], view[1 + _SIGNATURE :]
        if len(signature) != _SIGNATURE or not hmac.compare_digest(
            signature, hmac.digest(self._key, body, hashlib.sha256)
        ):
            raise ServerStatePayloadError(
                key,
                f"server_state[{key!r}]: the pickled value in Redis is not signed with this replica's "
                "signing key, so it was not unpickled: the signing keys of the replicas must match "
                "(SERVER_STATE_SIGNING_KEY).",
            )
        try:
            value = pickle.loads(body)
        except Exception as e:
            raise ServerStatePayloadError(
                key, f"server_state[{key!r}]: the pickled value in Redis cannot be unpickled here: {e!r}"
            ) from None
        return freeze(value, key)


# -- encoding ----------------------------------------------------------------------------------


class _Refused(Exception):
    """Something in the value that the tagged format cannot carry."""

    def __init__(self, obj: Any, reason: str = "") -> None:
        super().__init__(reason)
        self.obj = obj
        self.reason = reason


_local = threading.local()
_KEEP_BUFFER = 1 << 20


def _new_packer() -> msgpack.Packer:
    return msgpack.Packer(default=_default, strict_types=True, use_bin_type=True, autoreset=False)


def _encode(key: str, value: Any) -> bytes:
    # One Packer per thread, taken out while in use (so a nested call makes its own).
    pk: msgpack.Packer = _local.__dict__.pop("packer", None) or _new_packer()
    try:
        try:
            pk.pack(_MARK)
            pk.pack(value)
            out: bytes = pk.bytes()
        except UnicodeEncodeError:  # a str with a lone surrogate: the slower, lossless way
            out = _TAGGED + _pack_surrogates(value)
    except _Refused as e:
        raise _refusal(key, value, e) from None
    except RecursionError:
        raise _refusal(key, value, None) from None
    except ValueError as e:
        if "recursion" not in str(e):  # msgpack's own nesting limit says "recursion limit exceeded"
            raise
        raise _refusal(key, value, None) from None
    finally:
        pk.reset()
    if len(out) <= _KEEP_BUFFER:
        _local.packer = pk  # a Packer keeps the largest buffer it ever grew
    return out


def _pack(obj: Any) -> bytes:
    """The msgpack bytes of the data of an ext type."""
    try:
        return msgpack.packb(obj, default=_default, strict_types=True, use_bin_type=True)  # type: ignore[no-any-return]
    except UnicodeEncodeError:
        return _pack_surrogates(obj)


def _pack_surrogates(obj: Any) -> bytes:
    return msgpack.packb(  # type: ignore[no-any-return]
        obj, default=_default, strict_types=True, use_bin_type=True, unicode_errors="surrogatepass"
    )


def _ext(code: int, data: bytes) -> msgpack.ExtType:
    # ExtType's own __new__ checks its arguments in Python (~0.3 µs); ours are right by construction.
    return tuple.__new__(msgpack.ExtType, (code, data))


_COMPLEX = struct.Struct("<dd")
_DATE = struct.Struct("<HBB")
_DATETIME = struct.Struct("<HBBBBBI")
_TIME = struct.Struct("<BBBI")
_TIMEDELTA = struct.Struct("<iii")
_OFFSET = struct.Struct("<q")

_FACTORIES: dict[str, Callable[[], Any]] = {
    f.__name__: f for f in (list, dict, set, frozenset, tuple, int, float, complex, str, bytes, bool)
}
_PATHS: tuple[type, ...] = (
    pathlib.PurePosixPath,
    pathlib.PureWindowsPath,
    pathlib.PosixPath,
    pathlib.WindowsPath,
)


def _int(v: int) -> msgpack.ExtType:  # only beyond msgpack's 64 bits
    return _ext(1, v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True))


def _deque(v: Any) -> msgpack.ExtType:
    return _ext(4, _pack([v.maxlen, list(v)]))


def _defaultdict(v: Any) -> msgpack.ExtType:
    factory = v.default_factory
    name = None
    if factory is not None:
        name = next((n for n, f in _FACTORIES.items() if f is factory), None)
        if name is None:
            raise _Refused(
                v, f"its default_factory {factory!r} is not a builtin type ({', '.join(_FACTORIES)} or None)"
            )
    return _ext(6, _pack([name, dict(v)]))


def _zone(tz: Any, where: Any) -> bytes:
    if tz is None:
        return b""
    cached = _ZONES.get(id(tz))
    if cached is not None and cached[0] is tz:
        return cached[1]
    kind = type(tz)
    if kind is datetime.timezone:
        offset = tz.utcoffset(None)
        micros = _OFFSET.pack((offset.days * 86400 + offset.seconds) * 1_000_000 + offset.microseconds)
        out = b"O" + micros
        if repr(datetime.timezone(offset)) != repr(tz):  # a name of its own
            out = b"N" + micros + tz.tzname(None).encode("utf-8", "surrogatepass")
    elif kind is zoneinfo.ZoneInfo and tz.key is not None:
        out = b"Z" + tz.key.encode()
    else:
        raise _Refused(
            where,
            f"its tzinfo is a {kind.__module__}.{kind.__qualname__}: use datetime.timezone or "
            "zoneinfo.ZoneInfo (by key)",
        )
    if len(_ZONES) < 64:
        _ZONES[id(tz)] = (tz, out)  # the object is kept, so its id stays its own
    return out


_ZONES: dict[int, tuple[Any, bytes]] = {}


def _datetime(v: datetime.datetime) -> msgpack.ExtType:
    data = _DATETIME.pack(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond)
    if v.tzinfo is None and not v.fold:
        return _ext(15, data)
    return _ext(15, data + _FOLDS[v.fold] + _zone(v.tzinfo, v))


def _time(v: datetime.time) -> msgpack.ExtType:
    data = _TIME.pack(v.hour, v.minute, v.second, v.microsecond)
    if v.tzinfo is None and not v.fold:
        return _ext(16, data)
    return _ext(16, data + _FOLDS[v.fold] + _zone(v.tzinfo, v))


_FOLDS = (b"\x00", b"\x01")


def _timedelta(v: datetime.timedelta) -> msgpack.ExtType:
    return _ext(17, _TIMEDELTA.pack(v.days, v.seconds, v.microseconds))


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    FrozenList: list,
    FrozenDict: dict,
    collections.OrderedDict: dict,
    int: _int,
    bytearray: bytes,
    tuple: lambda v: _ext(2, _pack(list(v))),
    frozenset: lambda v: _ext(3, _pack(list(v))),
    set: lambda v: _ext(3, _pack(list(v))),
    FrozenDeque: _deque,
    collections.deque: _deque,
    FrozenCounter: lambda v: _ext(5, _pack(dict(v))),
    collections.Counter: lambda v: _ext(5, _pack(dict(v))),
    FrozenDefaultDict: _defaultdict,
    collections.defaultdict: _defaultdict,
    _C_PVECTOR: lambda v: _ext(7, _pack(v.tolist())),
    type(pmap()): lambda v: _ext(9, _pack(dict(v.items()))),
    type(pset()): lambda v: _ext(10, _pack(list(v))),
    _PLIST[0]: lambda v: _ext(11, _pack(list(v))),
    _PLIST[1]: lambda v: _ext(11, _pack(list(v))),
    _PDEQUE: lambda v: _ext(12, _pack([v.maxlen, list(v)])),
    complex: lambda v: _ext(13, _COMPLEX.pack(v.real, v.imag)),
    datetime.date: lambda v: _ext(14, _DATE.pack(v.year, v.month, v.day)),
    datetime.datetime: _datetime,
    datetime.time: _time,
    datetime.timedelta: _timedelta,
    datetime.timezone: lambda v: _ext(18, _zone(v, v)),
    decimal.Decimal: lambda v: _ext(19, str(v).encode()),
    fractions.Fraction: lambda v: _ext(20, _pack([v.numerator, v.denominator])),
    uuid.UUID: lambda v: _ext(21, v.bytes),
    range: lambda v: _ext(22, _pack([v.start, v.stop, v.step])),
    type(Ellipsis): lambda v: _ext(23, b""),
}
if _PY_PVECTOR is not None:
    _ENCODERS[_PY_PVECTOR] = lambda v: _ext(8, _pack(v.tolist()))
_LEARNED_MAX = 512


def _default(obj: Any) -> Any:
    """msgpack's hook for every object that is not of one of its own exact types."""
    handler = _ENCODERS.get(type(obj))
    if handler is not None:
        return handler(obj)
    kind = type(obj)
    module = kind.__module__
    if isinstance(obj, enum.Enum):
        handler = _enum_encoder(obj)
    elif isinstance(obj, pathlib.PurePath) and kind in _PATHS:
        handler = _path_encoder(_PATHS.index(kind))
    elif module == "numpy":
        return _numpy(obj)
    elif module.startswith("pandas"):
        return _pandas(obj)
    else:
        raise _Refused(obj)
    if len(_ENCODERS) < _LEARNED_MAX:
        _ENCODERS[kind] = handler
    return handler(obj)


def _path_encoder(index: int) -> Callable[[Any], Any]:
    return lambda v: _ext(24, _pack([index, str(v)]))


def _enum_encoder(member: enum.Enum) -> Callable[[Any], Any]:
    kind = type(member)
    module, qualname = kind.__module__, kind.__qualname__
    try:
        found = _resolve(module, qualname)
    except _Corrupt:
        found = None
    if found is not kind:
        raise _Refused(
            member,
            f"its enum class {module}.{qualname} cannot be found by name in a module (another replica "
            "could not read it back): define the Enum at the top level of a module the app imports",
        )
    if issubclass(kind, enum.Flag):
        return lambda v: _ext(25, _pack([module, qualname, v.value]))
    return lambda v: _ext(25, _pack([module, qualname, v.name]))


def _refusal(key: str, value: Any, error: _Refused | None) -> ServerStateTypeError:
    where = f"server_state[{key!r}]"
    if error is None:
        return ServerStateTypeError(
            key,
            f"{where}: this value is nested too deep to be stored in Redis: store a flatter value.",
        )
    try:
        found = _locate(value, where)
    except Exception:  # too deep to walk: the path stays the key's
        found = None
    if found is not None:
        where, error = found
    kind = type(error.obj)
    what = (
        f"a {kind.__qualname__}"
        if kind.__module__ == "builtins"
        else f"a {kind.__module__}.{kind.__qualname__}"
    )
    because = f" ({error.reason})" if error.reason else ""
    return ServerStateTypeError(key, f"{where}: cannot store {what} in Redis{because}; {_HOW_TO_PICKLE}.")


def _locate(value: Any, where: str) -> tuple[str, _Refused] | None:
    """Where in ``value`` (``server_state['k']['a'][2]``) the first part the
    tagged format refuses is, and why: the error path only."""
    if isinstance(value, (dict, PMap)):
        for k, v in value.items():
            found = _locate(k, f"{where} (the key {_short(k)})") or _locate(v, f"{where}[{_short(k)}]")
            if found is not None:
                return found
        return _try(value, where)
    if isinstance(value, _SEQUENCES):
        unordered = isinstance(value, (PSet, set, frozenset))
        for i, v in enumerate(cast("Iterable[Any]", value)):
            found = _locate(
                v, f"{where} (an item of a {type(value).__name__})" if unordered else f"{where}[{i}]"
            )
            if found is not None:
                return found
    return _try(value, where)


_SEQUENCES: tuple[type, ...] = (
    list,
    tuple,
    collections.deque,
    PVector,
    PSet,
    set,
    frozenset,
    *_PLIST,
    _PDEQUE,
)


_reprs = reprlib.Repr()  # keyword arguments only from Python 3.12 on
_reprs.maxstring = _reprs.maxother = 40
_short = _reprs.repr


def _try(value: Any, where: str) -> tuple[str, _Refused] | None:
    try:
        _pack(value)
    except _Refused as e:
        return where, e
    return None


# -- numpy and pandas --------------------------------------------------------------------------

_PLAIN_KINDS = "biufcmMSU"  # numpy dtype kinds carried as raw bytes (not object, not void/structured)


def _numpy(obj: Any) -> msgpack.ExtType:
    np = sys.modules["numpy"]
    if type(obj) is np.ndarray:
        return _ext(31, _pack(_array_parts(obj)))
    if isinstance(obj, np.generic) and obj.dtype.kind in _PLAIN_KINDS:
        return _ext(30, _pack([obj.dtype.str, obj.tobytes()]))
    raise _Refused(obj)


def _array_parts(arr: Any) -> list[Any]:
    np = sys.modules["numpy"]
    dtype = arr.dtype
    if dtype.kind not in _PLAIN_KINDS:
        raise _Refused(
            arr,
            f"an array of dtype {dtype} (object and structured arrays cannot be stored exactly): "
            "use a numeric, bool, str or datetime dtype",
        )
    order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
    flat = arr.T if order == "F" else np.ascontiguousarray(arr)  # C-contiguous either way
    raw = memoryview(flat.reshape(-1).view(np.uint8)) if dtype.itemsize else b""
    return [dtype.str, list(arr.shape), order, raw]


def _pandas(obj: Any) -> Any:
    pd = sys.modules["pandas"]
    kind = type(obj)
    if obj is pd.NaT:
        return _ext(42, b"")
    if obj is pd.NA:
        return _ext(46, b"")
    if kind is pd.Timestamp:
        return _ext(40, _pack([int(obj.asm8.view("i8")), obj.unit, _zone(obj.tzinfo, obj)]))
    if kind is pd.Timedelta:
        return _ext(41, _pack([int(obj.asm8.view("i8")), obj.unit]))
    if kind is pd.DataFrame:
        return _ext(45, _pandas_data(obj, _frame_parts))
    if kind is pd.Series:
        return _ext(44, _pandas_data(obj, _series_parts))
    if isinstance(obj, pd.Index) and kind.__module__ == "pandas":
        return _ext(43, _pandas_data(obj, _lone_index_parts))
    raise _Refused(obj)


def _pandas_data(obj: Any, parts: Callable[[Any, Any, _Arrow], list[Any]]) -> bytes:
    pd = sys.modules["pandas"]
    arrow = _Arrow(obj)
    try:
        return _pack([*parts(pd, obj, arrow), arrow.stream(pd)])
    except _Refused as e:
        raise _Refused(e.obj, "; ".join(filter(None, [e.reason, _cell_of(obj)]))) from None
    except RecursionError:
        raise
    except Exception as e:  # pyarrow's ArrowInvalid, ArrowTypeError...
        raise _Refused(obj, f"pyarrow cannot convert it: {e}") from None


class _Arrow:
    """The arrays of one frame, series or index that only Arrow carries
    (extension dtypes), sent as one IPC stream and checked to read back the same."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.arrays: list[Any] = []

    def add(self, array: Any) -> int:
        self.arrays.append(array)
        return len(self.arrays) - 1

    def stream(self, pd: Any) -> bytes | None:
        if not self.arrays:
            return None
        frame = pd.DataFrame({str(i): a for i, a in enumerate(self.arrays)}, copy=False)
        data = _arrow_stream(frame, False)
        back = _from_arrow(data)
        for i, a in enumerate(self.arrays):
            if not unchanged(pd.Series(a, copy=False), pd.Series(back.iloc[:, i].array, copy=False)):
                raise _Refused(
                    self.owner, f"its values of dtype {a.dtype} would not come back the same from Redis"
                )
        return data


def _arrow_stream(frame: Any, index: bool) -> bytes:
    try:
        pa = importlib.import_module("pyarrow")
    except ImportError:
        raise _Refused(
            frame, "pandas extension dtypes and MultiIndex need pyarrow: pip install pyarrow"
        ) from None
    table = pa.Table.from_pandas(frame, preserve_index=index)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _values_parts(pd: Any, values: Any, arrow: _Arrow) -> list[Any]:
    """The values of a column or an index: ``["n", array]`` (numpy dtypes),
    ``["o", cells]`` (object), ``["s", cells, storage, NaN or NA]`` (str) or
    ``["a", position in the Arrow stream]``."""
    np = sys.modules["numpy"]
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind == "O":
            return ["o", list(values)]
        if dtype.kind in _PLAIN_KINDS:
            return ["n", values.to_numpy()]
    elif type(dtype) is pd.StringDtype and dtype.storage in ("python", "pyarrow"):
        return ["s", list(values), dtype.storage, dtype.na_value is not pd.NA]
    return ["a", arrow.add(values.array)]


def _index_parts(pd: Any, idx: Any, arrow: _Arrow) -> list[Any]:
    """``[name, freq, values]``; values as in ``_values_parts``, or ``["r",
    start, stop, step]`` (RangeIndex), or ``["m", Arrow stream]`` (MultiIndex)."""
    kind = type(idx)
    if kind is pd.RangeIndex:
        return [idx.name, None, ["r", idx.start, idx.stop, idx.step]]
    if kind is pd.MultiIndex:
        data = _arrow_stream(pd.DataFrame(index=idx), True)
        if not _from_arrow(data).index.identical(idx):
            raise _Refused(idx, "its MultiIndex would not come back the same from Redis")
        return [None, None, ["m", data]]
    freq = idx.freqstr if kind in (pd.DatetimeIndex, pd.TimedeltaIndex) else None
    return [idx.name, freq, _values_parts(pd, idx, arrow)]


def _lone_index_parts(pd: Any, idx: Any, arrow: _Arrow) -> list[Any]:
    return [_index_parts(pd, idx, arrow)]


def _series_parts(pd: Any, s: Any, arrow: _Arrow) -> list[Any]:
    return [_index_parts(pd, s.index, arrow), s.name, _values_parts(pd, s, arrow)]


def _frame_parts(pd: Any, df: Any, arrow: _Arrow) -> list[Any]:
    return [
        _index_parts(pd, df.index, arrow),
        _index_parts(pd, df.columns, arrow),
        [_values_parts(pd, s, arrow) for _, s in df.items()],
    ]


def _cell_of(obj: Any) -> str:
    """Where in a frame or series the object cell that was refused is (the error path only)."""
    pd = sys.modules["pandas"]
    columns = (
        obj.items() if isinstance(obj, pd.DataFrame) else [(None, obj)] if isinstance(obj, pd.Series) else []
    )
    for label, s in columns:
        if s.dtype == object:
            for row, cell in s.items():
                if _try(cell, "") is not None:
                    column = "" if label is None else f"column {_short(label)}, "
                    return f"in {column}row {_short(row)} of the {type(obj).__name__}"
    return ""


# -- decoding ----------------------------------------------------------------------------------


class _Corrupt(Exception):
    """A payload this version cannot (or will not) decode."""


def _decode(key: str, data: bytes) -> Any:
    marker = data[:1]
    if marker != _TAGGED:
        if marker == _PICKLED:
            why = (
                "it is a pickle, and this replica uses the tagged serializer, which never unpickles: "
                "if the app stores pickles on purpose, set SERVER_STATE_SERIALIZER=pickle and the same "
                "SERVER_STATE_SIGNING_KEY on every replica"
            )
        else:
            why = f"it starts with {marker!r}, not a format this version knows"
        raise ServerStatePayloadError(key, f"server_state[{key!r}]: the value in Redis was refused: {why}.")
    try:
        value = _unpack(memoryview(data)[1:])
        return freeze(value, key)
    except _Corrupt as e:
        why = str(e)
    except Exception as e:  # msgpack's errors, a bad struct, an unhashable key...
        why = f"the data is corrupt ({type(e).__name__}: {e})"
    raise ServerStatePayloadError(key, f"server_state[{key!r}]: the value in Redis cannot be decoded: {why}.")


def _unpack(data: Any) -> Any:
    return msgpack.unpackb(
        data, ext_hook=_ext_hook, strict_map_key=False, raw=False, unicode_errors="surrogatepass"
    )


def _ext_hook(code: int, data: bytes) -> Any:
    decoder = _DECODERS.get(code)
    if decoder is None:
        raise _Corrupt(f"it holds an unknown tag {code} (written by a newer version?)")
    return decoder(data)


def _unzone(data: bytes) -> Any:
    if not data:
        return None
    tz = _UNZONES.get(data)
    if tz is not None:
        return tz
    marker = data[:1]
    if marker == b"Z":
        try:
            tz = zoneinfo.ZoneInfo(data[1:].decode())
        except Exception as e:
            raise _Corrupt(f"the time zone {data[1:]!r} is not known here ({e})") from None
    elif marker in (b"O", b"N"):
        offset = datetime.timedelta(microseconds=_OFFSET.unpack_from(data, 1)[0])
        if marker == b"O":
            tz = datetime.timezone(offset)
        else:
            tz = datetime.timezone(offset, data[1 + _OFFSET.size :].decode("utf-8", "surrogatepass"))
    else:
        raise _Corrupt(f"unknown time zone {data!r}")
    if len(_UNZONES) < 256:
        _UNZONES[data] = tz
    return tz


_UNZONES: dict[bytes, Any] = {}


def _un_datetime(data: bytes) -> datetime.datetime:
    n = _DATETIME.size
    if len(data) == n:  # naive, fold 0: the common case, positional arguments only
        return datetime.datetime(*_DATETIME.unpack(data))
    y, mo, d, h, mi, s, us = _DATETIME.unpack_from(data)
    return datetime.datetime(y, mo, d, h, mi, s, us, _unzone(data[n + 1 :]), fold=data[n])


def _un_time(data: bytes) -> datetime.time:
    n = _TIME.size
    if len(data) == n:
        return datetime.time(*_TIME.unpack(data))
    h, mi, s, us = _TIME.unpack_from(data)
    return datetime.time(h, mi, s, us, _unzone(data[n + 1 :]), fold=data[n])


def _un_defaultdict(data: bytes) -> Any:
    name, entries = _unpack(data)
    if name is None:
        return collections.defaultdict(None, entries)
    factory = _FACTORIES.get(name)
    if factory is None:
        raise _Corrupt(f"the default_factory {name!r} is not a builtin this version knows")
    return collections.defaultdict(factory, entries)


def _un_deque(data: bytes) -> Any:
    maxlen, items = _unpack(data)
    return collections.deque(items, maxlen)


def _un_pdeque(data: bytes) -> Any:
    maxlen, items = _unpack(data)
    return pdeque(items, maxlen)


def _un_py_pvector(data: bytes) -> Any:
    items = _unpack(data)
    return _python_pvector(items) if _python_pvector is not None else pvector(items)


def _un_path(data: bytes) -> Any:
    index, text = _unpack(data)
    try:
        return _PATHS[index](text)
    except NotImplementedError:  # a WindowsPath on POSIX, or the other way round
        raise _Corrupt(f"a {_PATHS[index].__name__} cannot be made on this system") from None


def _resolve(module: str, qualname: str) -> Any:
    """The object ``module.qualname`` from a module already imported, read
    through ``__dict__`` (no import, no module ``__getattr__``, no property)."""
    obj = sys.modules.get(module)
    if obj is None:
        raise _Corrupt(
            f"it holds a member of the enum {module}.{qualname}, and module {module!r} is not imported "
            "in this process (modules named by data in Redis are never imported): import it in the app "
            "before the state is read"
        )
    for part in qualname.split("."):
        found = getattr(obj, "__dict__", {}).get(part)
        if found is None:
            raise _Corrupt(f"it holds a member of the enum {module}.{qualname}, which is not in that module")
        obj = found
    return obj


def _un_enum(data: bytes) -> Any:
    module, qualname, member = _unpack(data)
    kind = _resolve(module, qualname)
    if not (isinstance(kind, type) and issubclass(kind, enum.Enum)):
        raise _Corrupt(f"{module}.{qualname} is not an Enum")
    try:
        if isinstance(member, str):
            return kind[member]
        if issubclass(kind, enum.Flag):
            return kind(member)
    except (KeyError, ValueError):
        pass
    raise _Corrupt(f"the enum {module}.{qualname} has no member {member!r}")


def _np() -> Any:
    try:
        return importlib.import_module("numpy")
    except ImportError:
        raise _Corrupt("it holds a numpy value, and numpy is not installed here") from None


def _pd() -> Any:
    try:
        return importlib.import_module("pandas")
    except ImportError:
        raise _Corrupt("it holds a pandas value, and pandas is not installed here") from None


def _dtype(np: Any, text: str) -> Any:
    dtype = np.dtype(text)
    if dtype.kind not in _PLAIN_KINDS:
        raise _Corrupt(f"dtype {text!r} is not one the tagged format carries")
    return dtype


def _un_np_scalar(data: bytes) -> Any:
    np = _np()
    text, raw = _unpack(data)
    dtype = _dtype(np, text)
    if dtype.kind == "U":  # exact even with trailing NULs, which an array would drop
        return np.str_(raw.decode("utf-32-be" if text.startswith(">") else "utf-32-le"))
    if dtype.kind == "S":
        return np.bytes_(raw)
    return np.frombuffer(raw, dtype)[0]


def _un_np_array(data: bytes) -> Any:
    return _array(_np(), _unpack(data))


def _array(np: Any, parts: list[Any]) -> Any:
    text, shape, order, raw = parts
    dtype = _dtype(np, text)
    if order not in ("C", "F"):
        raise _Corrupt(f"unknown array order {order!r}")
    if not dtype.itemsize:
        return np.empty(shape, dtype, order)
    # A copy: writable, as the stored array was, and not a view of the payload.
    return np.frombuffer(raw, dtype).reshape(shape, order=order).copy(order="K")


def _un_timestamp(data: bytes) -> Any:
    np, pd = _np(), _pd()
    value, unit, zone = _unpack(data)
    out = pd.Timestamp(np.datetime64(value, unit))
    tz = _unzone(zone)
    return out if tz is None else out.tz_localize("UTC").tz_convert(tz)


def _un_timedelta(data: bytes) -> Any:
    np, pd = _np(), _pd()
    value, unit = _unpack(data)
    return pd.Timedelta(np.timedelta64(value, unit))


def _from_arrow(data: bytes) -> Any:
    try:
        pa = importlib.import_module("pyarrow")
    except ImportError:
        raise _Corrupt("it holds pandas data in Arrow format, and pyarrow is not installed here") from None
    if tuple(int(p) if p.isdigit() else 0 for p in pa.__version__.split(".")[:3]) < (14, 0, 1):
        # Before 14.0.1 an Arrow stream could make pyarrow unpickle (CVE-2023-47248).
        raise _Corrupt(f"it holds Arrow data, and pyarrow {pa.__version__} is too old to read it safely")
    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    table.validate(full=True)
    return table.to_pandas()


def _un_values(pd: Any, part: list[Any], arrow: Any) -> tuple[Any, Any]:
    """Values and the dtype to build a Series or an Index of them with (an
    object array of strings would become ``str`` without ``dtype=object``)."""
    np = sys.modules["numpy"]
    how = part[0]
    if how == "n" and type(part[1]) is np.ndarray:
        return part[1], None
    if how == "o":
        cells = part[1]
        return np.fromiter(cells, object, len(cells)), object
    if how == "s":
        _, cells, storage, nan = part
        return cells, pd.StringDtype(storage, na_value=np.nan if nan else pd.NA)
    if how == "a" and arrow is not None:
        return arrow.iloc[:, part[1]].array, None
    raise _Corrupt(f"unknown encoding {how!r} of pandas values")


def _un_index(pd: Any, parts: list[Any], arrow: Any) -> Any:
    name, freq, values = parts
    how = values[0]
    if how == "r":
        _, start, stop, step = values
        return pd.RangeIndex(start, stop, step, name=name)
    if how == "m":
        return _from_arrow(values[1]).index
    data, dtype = _un_values(pd, values, arrow)
    idx = pd.Index(data, dtype=dtype, name=name, copy=False)
    return type(idx)(idx, freq=freq) if freq is not None else idx


def _un_column(pd: Any, part: list[Any], arrow: Any) -> Any:
    """A column: an array that keeps its dtype, else a Series (RangeIndex) of the dtype it needs."""
    data, dtype = _un_values(pd, part, arrow)
    return data if dtype is None else pd.Series(data, dtype=dtype, copy=False)


def _arrow_of(stream: bytes | None) -> Any:
    return _from_arrow(stream) if stream is not None else None


def _un_lone_index(data: bytes) -> Any:
    pd = _pd()
    index, stream = _unpack(data)
    return _un_index(pd, index, _arrow_of(stream))


def _un_series(data: bytes) -> Any:
    pd = _pd()
    index, name, column, stream = _unpack(data)
    arrow = _arrow_of(stream)
    data, dtype = _un_values(pd, column, arrow)
    out = pd.Series(data, dtype=dtype, copy=False)
    out.index = _un_index(pd, index, arrow)
    out.name = name
    return out


def _un_frame(data: bytes) -> Any:
    pd = _pd()
    index, columns, cols, stream = _unpack(data)
    arrow = _arrow_of(stream)
    index, columns = _un_index(pd, index, arrow), _un_index(pd, columns, arrow)
    if not cols:
        return pd.DataFrame(index=index, columns=columns)
    out = pd.DataFrame(dict(enumerate(_un_column(pd, c, arrow) for c in cols)), copy=False)
    out.index = index
    out.columns = columns
    return out


_DECODERS: dict[int, Callable[[bytes], Any]] = {
    1: lambda d: int.from_bytes(d, "little", signed=True),
    2: lambda d: tuple(_unpack(d)),
    3: lambda d: frozenset(_unpack(d)),
    4: _un_deque,
    5: lambda d: collections.Counter(_unpack(d)),
    6: _un_defaultdict,
    7: lambda d: pvector(_unpack(d)),
    8: _un_py_pvector,
    9: lambda d: pmap(_unpack(d)),
    10: lambda d: pset(_unpack(d)),
    11: lambda d: plist(_unpack(d)),
    12: _un_pdeque,
    13: lambda d: complex(*_COMPLEX.unpack(d)),
    14: lambda d: datetime.date(*_DATE.unpack(d)),
    15: _un_datetime,
    16: _un_time,
    17: lambda d: datetime.timedelta(*_TIMEDELTA.unpack(d)),
    18: _unzone,
    19: lambda d: decimal.Decimal(d.decode()),
    20: lambda d: fractions.Fraction(*_unpack(d)),
    21: lambda d: uuid.UUID(bytes=d),
    22: lambda d: range(*_unpack(d)),
    23: lambda d: Ellipsis,
    24: _un_path,
    25: _un_enum,
    30: _un_np_scalar,
    31: _un_np_array,
    40: _un_timestamp,
    41: _un_timedelta,
    42: lambda d: _pd().NaT,
    43: _un_lone_index,
    44: _un_series,
    45: _un_frame,
    46: lambda d: _pd().NA,
}
_TAGGED_CODEC = _TaggedCodec()


# -- items one by one: for values kept item by item (a Redis list or hash) --------------------


def encode_items(key: str, container: Any, items: Iterable[Any]) -> list[bytes]:
    """Each of ``items`` (of ``container``, named in errors) as its own
    msgpack object."""
    pk = msgpack.Packer(default=_default, strict_types=True, use_bin_type=True)
    try:
        try:
            return list(map(pk.pack, items))
        except UnicodeEncodeError:
            pk = msgpack.Packer(
                default=_default, strict_types=True, use_bin_type=True, unicode_errors="surrogatepass"
            )
            return list(map(pk.pack, items))
    except _Refused as e:
        raise _refusal(key, container, e) from None
    except RecursionError:
        raise _refusal(key, container, None) from None
    except ValueError as e:
        if "recursion" not in str(e):
            raise
        raise _refusal(key, container, None) from None


def map_items(value: Any) -> list[Any]:
    """A pmap's entries as one flat list: key, value, key, value..."""
    return list(chain.from_iterable(value.items()))


def decode_items(key: str, blob: bytes) -> list[Any]:
    """The items of ``blob``: msgpack objects one after another, as
    ``encode_items`` made them (plain forms, not frozen yet)."""
    try:
        unpacker = msgpack.Unpacker(
            ext_hook=_ext_hook,
            strict_map_key=False,
            raw=False,
            unicode_errors="surrogatepass",
            max_buffer_size=max(len(blob), 1 << 20),
        )
        unpacker.feed(blob)
        return list(unpacker)
    except _Corrupt as e:
        why = str(e)
    except Exception as e:
        why = f"the data is corrupt ({type(e).__name__}: {e})"
    raise ServerStatePayloadError(key, f"server_state[{key!r}]: the value in Redis cannot be decoded: {why}.")
