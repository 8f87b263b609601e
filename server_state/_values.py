"""The value model: what the store keeps, what a read hands out, and what
counts as a change.

Plain containers are frozen into read-only subclasses of ``list`` and ``dict``
(``FrozenList``, ``FrozenDict`` and their deque/Counter/defaultdict cousins),
tuples and frozensets. Those are at once the stored form and the read form, so
reading them costs nothing, and everything that takes a list or a dict
(``st.write``, ``st.json``, ``st.radio``, ``json.dumps``, ``v + [x]``) takes
them. Streamlit does not know pyrsistent values (it renders them as a repr
string and crashes on a ``PVector`` of options), so those are stored as they
are (with the plain containers inside them frozen), for O(log n) ``update``,
and read through a frozen plain copy built at most once per key-version.

Two invariants keep freezing cheap:

- a frozen container only ever holds frozen values, and carries the key it
  was frozen for (``_ss_key``, named in mutation errors); so do all the frozen
  containers inside it. Types in ``_SETTLED`` need no visit at all;
- what ``freeze`` returned for a key is known frozen: ``previous`` lets the
  items of a new value that are the very objects of the stored one skip the
  visit (``stored + [m]`` visits ``m`` only).

``unchanged`` is exact: two values are the same when no reader can tell them
apart (types, dict order, a Decimal's exponent, a datetime's tzinfo and fold,
the sign of a zero; NaN is the same as NaN), and it runs at C speed over large
lists by comparing them column by column (all the ints at once with ``==``,
all the floats with ``==`` and then the signs of their zeros, the keys of a
list of dicts as one list and their values as another...). A long frozen
list remembers the one type of its items, when it has one, so that an equal
write of it needs no pass over the types.

Every type known up front is registered once, at the end of the module
(``_register``: its freezer, its exact comparison, its traits); the sets and
dicts the code looks types up in are views of that registry. pyrsistent's
private layout is read in ``_pcompat`` only (docs/pyrsistent.md).

numpy and pandas are never imported here: their values are recognised by the
module their type comes from, and whatever they need is taken from
``sys.modules`` once such a value exists.
"""

from __future__ import annotations

import collections
import copy
import datetime
import decimal
import enum
import fractions
import hashlib
import operator
import pathlib
import pickle
import sys
import uuid
from array import array
from collections.abc import Callable, Iterable
from itertools import chain, compress, count, repeat
from math import copysign, isnan
from typing import Any, NoReturn, cast

from pyrsistent import PMap, PSet, PVector

from ._errors import ReadOnlyValueError, ServerStateTypeError
from ._pcompat import C_PVECTOR as _C_PVECTOR  # None without pyrsistent's C extension
from ._pcompat import PDEQUE as _PDEQUE
from ._pcompat import PLISTS as _PLIST
from ._pcompat import PMAP as _PMAP
from ._pcompat import PSET as _PSET
from ._pcompat import PY_PVECTOR as _PY_PVECTOR
from ._pcompat import (
    pdeque_lists,
    pdeque_with_lists,
    pmap_buckets,
    pmap_with_python_buckets,
    python_pvector,
    vector_changed,
)

__all__ = [
    "FrozenCounter",
    "FrozenDefaultDict",
    "FrozenDeque",
    "FrozenDict",
    "FrozenList",
    "SCALAR_TYPES",
    "TOKENLESS_TYPES",
    "content_token",
    "freeze",
    "is_persistent",
    "needs_token",
    "read_form",
    "thaw",
    "tokens_of",
    "unchanged",
]

_is = operator.is_
_is_not = operator.is_not
_not = operator.not_

_LARGE_VECTOR = 64  # from this length on, vectors are kept as pure-Python PVectors (see _freeze_pvector)
_LARGE_BUCKETS = 256  # the same for a pmap's buckets (a lookup then costs ~0.4 µs more)
_SEQUENCES: tuple[type, ...] = (PVector, *_PLIST, _PDEQUE)
_PERSISTENT: tuple[type, ...] = (PMap, PSet, *_SEQUENCES)

# Views of the type registry (_register, at the end of the module), as sets
# and dicts for C-speed lookups and subset tests. Types learned on the way
# (numpy scalars, enums, paths...) are added to them.
Freezer = Callable[[Any, str | None, Any], Any]
Comparator = Callable[[Any, Any], bool]
_REGISTRY: dict[type, tuple[Freezer | None, Comparator | None, frozenset[str]]] = {}
_SETTLED: set[type] = set()  # freeze: stored as they are, never visited (no freezer)
_LABELLED: set[type] = set()  # the Frozen* containers, carrying their key (_ss_key)
_FROZEN: set[type] = set()  # settled or labelled: an element needs no visit if its label matches
_FREEZERS: dict[type, Freezer] = {}
_EQ_KINDS: set[type] = set()  # == is exact: equal means a reader cannot tell them apart
_FLOAT_KINDS: set[type] = set()  # compared as raw doubles in columns
_SAME: dict[type, Comparator] = {}  # the exact comparison of the others (learned ones cached)
_PYRSISTENT_TYPES: set[type] = set()  # stored as they are; read through a frozen plain copy
_SCALARS: set[type] = set()  # the immutable builtin scalars (repr exact, no token)
_ATOMIC_BASES: tuple[type, ...] = (enum.Enum, pathlib.PurePath)
_LEARNED_MAX = 512  # learned types kept at most, so that types made on the fly cannot pile up


def _readonly_error(label: str | None, what: str) -> ReadOnlyValueError:
    if label is None:
        return ReadOnlyValueError(
            None,
            f"server_state values are read-only ({what} is not allowed): "
            "assign a new value, or use server_state.update(key, fn).",
        )
    return ReadOnlyValueError(
        label,
        f"server_state[{label!r}] is read-only ({what} is not allowed): assign a new "
        f"value (server_state[{label!r}] = new_value) or use "
        f"server_state.update({label!r}, fn).",
    )


def _too_deep(label: str | None) -> ServerStateTypeError:
    where = "this value" if label is None else f"the value for server_state[{label!r}]"
    return ServerStateTypeError(
        label,
        f"{where} is nested too deep or contains itself (a list, dict or tuple that holds itself, "
        f"or more than about {sys.getrecursionlimit() // 4} levels of nesting): store a flatter "
        "value (e.g. ids that refer to other entries), or an object of your own, stored by reference.",
    )


_list_new = list.__new__
_list_extend = list.extend
_dict_new = dict.__new__
_dict_update = dict.update


class FrozenList(list):  # type: ignore[type-arg]
    """A ``list`` whose mutators raise. ``v + [x]`` and ``list(v)`` give plain lists.

    Built by hand (``FrozenList([1, [2]])``) it freezes its items like an
    assignment does, and names no key in its errors.
    """

    __slots__ = ("_ss_key", "_ss_kind")
    _ss_key: str | None
    _ss_kind: type  # set on long lists whose items are all of one type (see _freeze_long)

    def __init__(self, iterable: Iterable[Any] = (), /) -> None:
        if _initialised(self):
            self._refuse("__init__")
        list.__init__(self, _guarded(_freeze_seq, list(iterable), None, None))
        self._ss_key = None

    def _refuse(self, what: str) -> NoReturn:
        raise _readonly_error(getattr(self, "_ss_key", None), what)

    def append(self, *_: Any) -> NoReturn:
        self._refuse("append")

    def extend(self, *_: Any) -> NoReturn:
        self._refuse("extend")

    def insert(self, *_: Any) -> NoReturn:
        self._refuse("insert")

    def remove(self, *_: Any) -> NoReturn:
        self._refuse("remove")

    def pop(self, *_: Any) -> NoReturn:
        self._refuse("pop")

    def clear(self) -> NoReturn:
        self._refuse("clear")

    def sort(self, *_: Any, **__: Any) -> NoReturn:
        self._refuse("sort")

    def reverse(self) -> NoReturn:
        self._refuse("reverse")

    def __setitem__(self, *_: Any) -> NoReturn:
        self._refuse("item assignment")

    def __delitem__(self, *_: Any) -> NoReturn:
        self._refuse("item deletion")

    def __iadd__(self, _: Any) -> NoReturn:  # type: ignore[misc]
        self._refuse("+=")

    def __imul__(self, _: Any) -> NoReturn:  # type: ignore[misc]
        self._refuse("*=")

    def __copy__(self) -> Any:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return thaw(self)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_restore_list, (list(self), self._ss_key))


class FrozenDeque(FrozenList):
    """What a ``collections.deque`` is stored as: a read-only list (so that
    Streamlit and ``json.dumps`` take it) that keeps ``maxlen``; ``thaw`` and
    ``copy.copy`` give a deque again."""

    __slots__ = ("_maxlen",)
    _maxlen: int | None

    def __init__(self, iterable: Iterable[Any] = (), maxlen: int | None = None) -> None:
        items = collections.deque(iterable, maxlen)  # validates maxlen, keeps the last ones
        FrozenList.__init__(self, items)
        self._maxlen = maxlen

    @property
    def maxlen(self) -> int | None:
        return self._maxlen

    def appendleft(self, *_: Any) -> NoReturn:
        self._refuse("appendleft")

    def extendleft(self, *_: Any) -> NoReturn:
        self._refuse("extendleft")

    def popleft(self) -> NoReturn:
        self._refuse("popleft")

    def rotate(self, *_: Any) -> NoReturn:
        self._refuse("rotate")

    def __copy__(self) -> Any:
        return collections.deque(self, self._maxlen)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_restore_deque, (list(self), self._ss_key, self._maxlen))


class FrozenDict(dict):  # type: ignore[type-arg]
    """A ``dict`` whose mutators raise. ``d | other`` and ``dict(d)`` give plain dicts.

    Built by hand (``FrozenDict(a=[1])``) it freezes its values like an
    assignment does, and names no key in its errors.
    """

    __slots__ = ("_ss_key",)
    _ss_key: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if _initialised(self):
            self._refuse("__init__")
        _dict_update(self, _guarded(_freeze_entries, dict(*args, **kwargs), None, None))
        self._ss_key = None

    @classmethod
    def fromkeys(cls, iterable: Iterable[Any], value: Any = None, /) -> Any:
        # dict.fromkeys would fill an empty instance with __setitem__.
        return FrozenDict(dict.fromkeys(iterable, value))

    def _refuse(self, what: str) -> NoReturn:
        raise _readonly_error(getattr(self, "_ss_key", None), what)

    def __setitem__(self, *_: Any) -> NoReturn:
        self._refuse("item assignment")

    def __delitem__(self, *_: Any) -> NoReturn:
        self._refuse("item deletion")

    def clear(self) -> NoReturn:
        self._refuse("clear")

    def pop(self, *_: Any) -> NoReturn:
        self._refuse("pop")

    def popitem(self) -> NoReturn:
        self._refuse("popitem")

    def setdefault(self, *_: Any) -> NoReturn:
        self._refuse("setdefault")

    def update(self, *_: Any, **__: Any) -> NoReturn:
        self._refuse("update")

    def __ior__(self, _: Any) -> NoReturn:  # type: ignore[misc]
        self._refuse("|=")

    def copy(self) -> Any:
        return dict(self)

    def __copy__(self) -> Any:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return thaw(self)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_restore_dict, (dict(self), self._ss_key))


class FrozenCounter(FrozenDict, collections.Counter):  # type: ignore[type-arg]
    """What a ``collections.Counter`` is stored as: a read-only Counter
    (missing keys count 0; ``most_common``, ``total``, ``c + d`` work and give
    plain Counters)."""

    __slots__ = ()

    def __init__(self, iterable: Any = None, /, **kwds: Any) -> None:
        FrozenDict.__init__(self, collections.Counter(iterable, **kwds))

    def subtract(self, *_: Any, **__: Any) -> NoReturn:
        self._refuse("subtract")

    def __iadd__(self, _: Any) -> NoReturn:  # type: ignore[misc]
        self._refuse("+=")

    def __isub__(self, _: Any) -> NoReturn:  # type: ignore[misc]
        self._refuse("-=")

    def __iand__(self, _: Any) -> NoReturn:  # type: ignore[misc]
        self._refuse("&=")

    def __ior__(self, _: Any) -> NoReturn:  # type: ignore[misc]
        self._refuse("|=")

    @classmethod
    def fromkeys(cls, iterable: Iterable[Any], value: Any = None, /) -> Any:
        raise NotImplementedError("FrozenCounter.fromkeys() is undefined, as Counter.fromkeys() is.")

    def copy(self) -> Any:
        return collections.Counter(self)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_restore_counter, (dict(self), self._ss_key))


class FrozenDefaultDict(FrozenDict):
    """What a ``collections.defaultdict`` is stored as: a read-only dict whose
    missing keys read as ``default_factory()`` (frozen: read-only like the
    rest) without being inserted."""

    __slots__ = ("_factory",)
    _factory: Callable[[], Any] | None

    def __init__(
        self, default_factory: Callable[[], Any] | None = None, /, *args: Any, **kwargs: Any
    ) -> None:
        if default_factory is not None and not callable(default_factory):
            raise TypeError("first argument must be callable or None")
        FrozenDict.__init__(self, *args, **kwargs)
        self._factory = default_factory

    @property
    def default_factory(self) -> Callable[[], Any] | None:
        return self._factory

    def __missing__(self, key: Any) -> Any:
        if self._factory is None:
            raise KeyError(key)
        return freeze(self._factory(), self._ss_key)

    @classmethod
    def fromkeys(cls, iterable: Iterable[Any], value: Any = None, /) -> Any:
        return FrozenDefaultDict(None, dict.fromkeys(iterable, value))

    def copy(self) -> Any:
        return collections.defaultdict(self._factory, self)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_restore_defaultdict, (dict(self), self._ss_key, self._factory))


def _initialised(value: Any) -> bool:
    try:
        value._ss_key  # noqa: B018 - unset only while a hand-built one is being made
    except AttributeError:
        return False
    return True


# The makers below take items that are frozen already and never call the
# classes' own __init__ (which would freeze them again).


def _make_list(items: Any, label: str | None) -> FrozenList:
    out = _list_new(FrozenList)
    _list_extend(out, items)
    out._ss_key = label
    return out


def _make_deque(items: Any, label: str | None, maxlen: int | None) -> FrozenDeque:
    out = _list_new(FrozenDeque)
    _list_extend(out, items)
    out._ss_key = label
    out._maxlen = maxlen
    return out


def _make_dict(items: Any, label: str | None) -> FrozenDict:
    out = _dict_new(FrozenDict)
    _dict_update(out, items)
    out._ss_key = label
    return out


def _make_counter(items: Any, label: str | None) -> FrozenCounter:
    out = _dict_new(FrozenCounter)
    _dict_update(out, items)
    out._ss_key = label
    return out


def _make_defaultdict(items: Any, label: str | None, factory: Callable[[], Any] | None) -> FrozenDefaultDict:
    out = _dict_new(FrozenDefaultDict)
    _dict_update(out, items)
    out._ss_key = label
    out._factory = factory
    return out


def _restore_list(items: list[Any], label: str | None) -> FrozenList:
    return _make_list(items, label)


def _restore_deque(items: list[Any], label: str | None, maxlen: int | None) -> FrozenDeque:
    return _make_deque(items, label, maxlen)


def _restore_dict(items: dict[Any, Any], label: str | None) -> FrozenDict:
    return _make_dict(items, label)


def _restore_counter(items: dict[Any, Any], label: str | None) -> FrozenCounter:
    return _make_counter(items, label)


def _restore_defaultdict(
    items: dict[Any, Any], label: str | None, factory: Callable[[], Any] | None
) -> FrozenDefaultDict:
    return _make_defaultdict(items, label, factory)


_label_of = operator.attrgetter("_ss_key")
_is_labelled = _LABELLED.__contains__


def is_persistent(value: object) -> bool:
    """True for the pyrsistent structures stored as they are."""
    return isinstance(value, _PERSISTENT)


# -- freezing ------------------------------------------------------------------------


def freeze(value: Any, label: str | None = None, *, previous: Any = None) -> Any:
    """Return the stored form of ``value``, never aliasing a mutable input.

    ``previous`` is what ``freeze`` returned for the same ``label`` before
    (the value stored now); anything else (None, a MISSING sentinel, a plain
    value) means there is none. Items of ``value`` that are the very objects
    of ``previous`` are known frozen and not visited, so ``stored + [m]``
    costs C-speed identity checks plus the freezing of ``m``, and a pyrsistent
    value derived from the stored one visits only what is not shared with it.

    A value that contains itself or is nested too deep raises
    ``ServerStateTypeError`` naming ``label``.
    """
    kind = type(value)
    if kind in _SETTLED:
        return value
    try:
        handler = _FREEZERS.get(kind)
        if handler is not None:
            return handler(value, label, previous)
        return _freeze_other(value, label, previous)
    except RecursionError:
        raise _too_deep(label) from None


def _guarded(fn: Callable[..., Any], value: Any, label: str | None, previous: Any) -> Any:
    try:
        return fn(value, label, previous)
    except RecursionError:
        raise _too_deep(label) from None


def _freeze(value: Any, label: str | None, previous: Any) -> Any:
    kind = type(value)
    if kind in _SETTLED:
        return value
    handler = _FREEZERS.get(kind)
    if handler is not None:
        return handler(value, label, previous)
    return _freeze_other(value, label, previous)


def _freeze_elem(value: Any, label: str | None, previous: Any = None) -> Any:
    """An item inside a plain container: there the stored form is also the
    read form, so a pyrsistent value becomes its frozen plain copy."""
    kind = type(value)
    handler = _FREEZERS.get(kind)
    if handler is not None:
        if kind in _PYRSISTENT_TYPES:
            return _read(value, label)
        return handler(value, label, previous)
    if kind in _SETTLED:
        return value
    if isinstance(value, _PERSISTENT):
        return _read(value, label)
    return _freeze_other(value, label, previous)


def _labels_match(items: Any, label: str | None) -> bool:
    # Labelled containers hold containers of their own label only, so the
    # labels of the items themselves tell about everything below them.
    return set(map(_label_of, compress(items, map(_is_labelled, map(type, items))))) <= {label}


_CHUNK = 64
_drain: Callable[[Iterable[Any]], None] = collections.deque(maxlen=0).extend  # runs a map() at C speed


def _kinds(items: Any) -> set[type]:
    """The types of a list's or tuple's items. A long list of one type (the
    common case) is recognised by counting, twice as fast as building a set."""
    if len(items) > _CHUNK:
        first = type(items[0])
        types = list(map(type, items))
        if types.count(first) == len(types):
            return {first}
        return set(types)
    return set(map(type, items))


def _freeze_seq(items: Any, label: str | None, previous: Any) -> Any:
    """The frozen items of a list or tuple: ``items`` itself when none needed
    a change, else a new list."""
    if len(items) > _CHUNK:
        return _freeze_long(items, label, previous)[0]
    if _usable_previous(previous, label):
        return _freeze_after(items, label, previous)[0]
    kinds = set(map(type, items))
    if kinds <= _SETTLED or (kinds <= _FROZEN and _labels_match(items, label)):
        return items
    # Short ones item by item right here, not a call deeper: three frames
    # per level of nesting, so that values nested ~300 deep still fit the
    # recursion limit.
    out: list[Any] | None = None
    settled = _SETTLED
    for i, v in enumerate(items):
        if type(v) in settled:
            continue
        done = _freeze_elem(v, label)
        if done is not v:
            if out is None:
                out = list(items)
            out[i] = done
    return items if out is None else out


def _usable_previous(previous: Any, label: str | None) -> bool:
    kind = type(previous)
    return kind is tuple or ((kind is FrozenList or kind is FrozenDeque) and previous._ss_key == label)


def _kind_of(value: Any) -> type | None:
    """The one type of all the items of a long FrozenList, when freeze knew it."""
    return getattr(value, "_ss_kind", None)


def _freeze_long(items: Any, label: str | None, previous: Any) -> tuple[Any, type | None]:
    """``_freeze_seq`` for long sequences; also returns the one type of all
    the frozen items when they have one (None otherwise), for
    ``FrozenList._ss_kind``: an equal write is then compared without a pass
    over the types."""
    if _usable_previous(previous, label):
        return _freeze_after(items, label, previous)
    kinds = _kinds(items)
    if kinds <= _SETTLED or (kinds <= _FROZEN and _labels_match(items, label)):
        return items, _only(kinds)
    return _freeze_fresh(items, kinds, label)


def _only(kinds: set[type]) -> type | None:
    return next(iter(kinds)) if len(kinds) == 1 else None


def _freeze_after(items: Any, label: str | None, previous: Any) -> tuple[Any, type | None]:
    """``_freeze_seq`` with a stored ``previous``: the common prefix and
    suffix (by identity, at C speed) are neither visited nor even looked at
    for their types, which covers append, prepend, insertion and deletion."""
    n, m = len(items), len(previous)
    before = _kind_of(previous)
    k = next(compress(count(), map(_is_not, items, previous)), min(n, m))
    if k == n:
        return items, before
    j = next(compress(count(), map(_is_not, reversed(items), reversed(previous))), min(n, m))
    j = min(j, n - k)
    # Shared ends worth cutting off (a slice is a copy): else look at it all.
    whole = 4 * (k + j) < n
    middle = items if whole else items[k : n - j]
    kinds = _kinds(middle)
    if kinds <= _SETTLED or (kinds <= _FROZEN and _labels_match(middle, label)):
        return items, _joined(_only(kinds), before, whole)
    done, kind = _freeze_fresh(middle, kinds, label)
    kind = _joined(kind, before, whole)
    if done is middle:
        return items, kind
    if whole:
        return done, kind
    out = items[:k] if type(items) is list else list(items[:k])
    out += done
    out += items[n - j :]
    return out, kind


def _joined(middle: type | None, ends: type | None, whole: bool) -> type | None:
    """The one type of the items, from that of the part looked at and that of
    the shared ends (the previous value's)."""
    return middle if whole or middle is ends else None


def _freeze_fresh(items: Any, kinds: set[type], label: str | None) -> tuple[Any, type | None]:
    """Items with something to freeze."""
    if len(items) > _CHUNK and len(kinds) == 1:
        kind = next(iter(kinds))
        done = _freeze_rows(items, kind, label)
        if done is not None:
            return done, FrozenDict if kind is dict else FrozenList if kind is list else kind
    out: list[Any] | None = None
    settled = _SETTLED
    for i, v in enumerate(items):
        if type(v) in settled:
            continue
        done = _freeze_elem(v, label)
        if done is not v:
            if out is None:
                out = list(items)
            out[i] = done
    return (items if out is None else out), None


def _freeze_rows(items: Any, kind: type, label: str | None) -> list[Any] | None:
    """Many flat dicts, lists or tuples (rows of settled values: the usual
    table or chat log), frozen in a few C-speed passes over all of them
    instead of a Python call each. None when they are not all flat."""
    if kind is dict:
        inner: Any = chain.from_iterable(map(dict.values, items))
    elif kind is list or issubclass(kind, tuple):  # namedtuples too
        inner = chain.from_iterable(items)
    else:
        return None
    if not set(map(type, inner)) <= _SETTLED:
        return None
    if kind is not list and kind is not dict:
        return items  # type: ignore[no-any-return]  # tuples of settled values: frozen already
    n = len(items)
    out: list[Any]
    if kind is dict:
        out = list(map(_dict_new, repeat(FrozenDict, n)))
        _drain(map(_dict_update, out, items))
    else:
        out = list(map(_list_new, repeat(FrozenList, n)))
        _drain(map(_list_extend, out, items))
    _drain(map(setattr, out, repeat("_ss_key", n), repeat(label, n)))
    return out


def _freeze_entries(value: Any, label: str | None, previous: Any) -> Any:
    """The frozen entries of a dict: ``value`` itself when none needed a
    change, else a new dict. Entries whose value is the very object the
    stored ``previous`` holds for that key are not visited."""
    values = value.values()
    kinds = set(map(type, values))
    if kinds <= _SETTLED or (kinds <= _FROZEN and _labels_match(values, label)):
        return value
    settled = _SETTLED
    out: dict[Any, Any] | None = None
    if type(previous) in _LABELLED and isinstance(previous, dict) and _label_of(previous) == label:
        prev_get = previous.get
        changed = compress(value.items(), map(_is_not, map(prev_get, value), values))
        for k, v in list(changed):
            if type(v) in settled:
                continue
            done = _freeze_elem(v, label, prev_get(k))
            if done is not v:
                if out is None:
                    out = dict(value)
                out[k] = done
        return value if out is None else out
    if len(kinds) == 1 and len(value) > _CHUNK:
        rows = _freeze_rows(list(values), next(iter(kinds)), label)
        if rows is not None:
            return dict(zip(value, rows, strict=True))
    for k, v in value.items():
        if type(v) in settled:
            continue
        done = _freeze_elem(v, label)
        if done is not v:
            if out is None:
                out = dict(value)
            out[k] = done
    return value if out is None else out


def _freeze_list(value: Any, label: str | None, previous: Any) -> Any:
    if len(value) <= _CHUNK and set(map(type, value)) <= _SETTLED:  # short and flat: the usual write
        out = _list_new(FrozenList)
        _list_extend(out, value)
        out._ss_key = label
        return out
    if len(value) > _CHUNK:
        items, kind = _freeze_long(value, label, previous)
        out = _make_list(items, label)
        if kind is not None:
            out._ss_kind = kind
        return out
    return _make_list(_freeze_seq(value, label, previous), label)


def _freeze_frozen_list(value: Any, label: str | None, previous: Any) -> Any:
    if value._ss_key == label:
        return value
    # Assigned from another key (or built by hand): a relabelled copy, so
    # that a mutation attempt names the key the user assigned, down to the
    # innermost container.
    return _freeze_list(value, label, previous)


def _freeze_deque(value: Any, label: str | None, previous: Any) -> Any:
    if type(value) is FrozenDeque and value._ss_key == label:
        return value
    items = value if isinstance(value, list) else list(value)
    return _make_deque(_freeze_seq(items, label, previous), label, value.maxlen)


def _freeze_dict(value: Any, label: str | None, previous: Any) -> Any:
    if set(map(type, value.values())) <= _SETTLED:  # most rows: no call to _freeze_entries
        out = _dict_new(FrozenDict)
        _dict_update(out, value)
        out._ss_key = label
        return out
    return _make_dict(_freeze_entries(value, label, previous), label)


def _freeze_frozen_dict(value: Any, label: str | None, previous: Any) -> Any:
    if value._ss_key == label:
        return value
    return _make_dict(_freeze_entries(value, label, previous), label)


def _freeze_counter(value: Any, label: str | None, previous: Any) -> Any:
    if type(value) is FrozenCounter and value._ss_key == label:
        return value
    return _make_counter(_freeze_entries(value, label, previous), label)


def _freeze_defaultdict(value: Any, label: str | None, previous: Any) -> Any:
    if type(value) is FrozenDefaultDict and value._ss_key == label:
        return value
    return _make_defaultdict(_freeze_entries(value, label, previous), label, value.default_factory)


def _freeze_tuple(value: Any, label: str | None, previous: Any) -> Any:
    items = _freeze_seq(value, label, previous)
    if items is value:
        return value  # already immutable: keep the object (and namedtuple type)
    kind = type(value)
    if kind is tuple:
        return tuple(items)
    make = getattr(value, "_make", None)
    return make(items) if make is not None else tuple(items)


def _freeze_set(value: Any, label: str | None, previous: Any) -> Any:
    return frozenset(value)


def _freeze_bytearray(value: Any, label: str | None, previous: Any) -> Any:
    return bytes(value)


def _freeze_other(value: Any, label: str | None, previous: Any) -> Any:
    """Subclasses of the containers above, and everything stored by reference."""
    if isinstance(value, (collections.deque, FrozenDeque)):
        return _freeze_deque(value, label, previous)
    if isinstance(value, list):
        return _freeze_list(value, label, previous)
    if isinstance(value, collections.Counter):
        return _freeze_counter(value, label, previous)
    if isinstance(value, collections.defaultdict):
        return _freeze_defaultdict(value, label, previous)
    if isinstance(value, dict):
        return _freeze_dict(value, label, previous)
    if isinstance(value, tuple):
        return _freeze_tuple(value, label, previous)
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, PVector):
        return _freeze_pvector(value, label, previous)
    if isinstance(value, PMap):
        return _freeze_pmap(value, label, previous)
    if isinstance(value, PSet):
        return value
    if isinstance(value, _PLIST):
        return _freeze_plist(value, label, previous)
    if isinstance(value, _PDEQUE):
        return _freeze_pdeque(value, label, previous)
    _learn(type(value))
    return value  # stored by reference


def _learn(kind: type) -> None:
    """Let immutable scalar types met in values skip later visits."""
    if len(_SETTLED) >= _LEARNED_MAX:
        return
    module = kind.__module__
    if module == "numpy":
        np = sys.modules.get("numpy")
        # np.void scalars can be views into an array: not immutable.
        if np is None or not issubclass(kind, np.generic) or issubclass(kind, (np.void, np.object_)):
            return
    elif module.startswith("pandas"):
        if kind.__name__ not in ("Timestamp", "Timedelta"):
            return
    elif not issubclass(kind, _ATOMIC_BASES):
        return
    _SETTLED.add(kind)
    _FROZEN.add(kind)


# -- pyrsistent values: frozen inside, rebuilt only where something changed ----------------


def _unsettled(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """The ``(key, item)`` pairs whose item's type is not settled."""
    settled = _SETTLED
    return [pair for pair in pairs if type(pair[1]) not in settled]


def _freeze_pvector(value: Any, label: str | None, previous: Any) -> Any:
    changes: list[tuple[int, Any]] = []
    prev: Any = previous if isinstance(previous, PVector) else None
    n_prev = len(prev) if prev is not None else 0
    for i, item in _unsettled(vector_changed(value, prev)):
        done = _freeze(item, label, prev[i] if i < n_prev else None)
        if done is not item:
            changes.append((i, done))
    if len(changes) == 1:
        value = value.set(*changes[0])  # an append's new item: cheaper than an evolver
    elif changes:
        evolver = value.evolver()
        for i, done in changes:
            evolver[i] = done
        value = evolver.persistent()
    if type(value) is _C_PVECTOR and len(value) >= _LARGE_VECTOR:
        # pyrsistent's C PVector is one GC object whose traversal visits every
        # element: each new version (every append) is young, so every minor
        # collection walks all n elements and a 100k-item append costs ~80 µs
        # instead of ~5. It also shares nothing we can see, so telling what a
        # new version changed costs a C-speed pass over it (~35 µs at 1,000
        # items). The pure-Python PVector's nodes are GC objects of their own:
        # a new version adds O(log n) young ones, and its trie lets the next
        # freeze visit only the nodes that are new. Same API; an append is
        # ~0.4 µs slower, which pays from a few dozen items on.
        return python_pvector(value)
    return value


def _freeze_pmap(value: Any, label: str | None, previous: Any) -> Any:
    buckets = pmap_buckets(value)
    prev = previous if type(previous) is _PMAP or isinstance(previous, PMap) else None
    if prev is not None:
        entries = [kv for _, b in vector_changed(buckets, pmap_buckets(prev)) if b for kv in b]
    else:
        entries = list(chain.from_iterable(filter(None, buckets.tolist())))
    changes: list[tuple[Any, Any]] = []
    for k, v in _unsettled(entries):
        before = prev.get(k) if prev is not None else None
        if before is v:
            continue
        done = _freeze(v, label, before)
        if done is not v:
            changes.append((k, done))
    if len(changes) == 1:
        value = value.set(*changes[0])
    elif changes:
        evolver = value.evolver()
        for k, done in changes:
            evolver[k] = done
        value = evolver.persistent()
    if type(value) is _PMAP:
        buckets = pmap_buckets(value)
        if type(buckets) is _C_PVECTOR and len(buckets) >= _LARGE_BUCKETS:
            # A pmap is a vector of buckets: kept as a pure-Python PVector, the
            # buckets a change did not touch are shared by identity with the
            # previous version, so the next freeze visits only the touched ones.
            return pmap_with_python_buckets(value)
    return value


def _plist_split(new: Any, old: Any) -> tuple[list[Any], Any]:
    """The leading items of plist ``new`` not shared with plist ``old``, and
    the node from which ``new`` is made of ``old``'s nodes. Both lists are
    walked together, so a ``cons`` or a ``rest`` costs a step or two."""
    fresh: list[Any] = []
    if not isinstance(old, _PLIST):
        node = new
        while node:
            fresh.append(node.first)
            node = node.rest
        return fresh, node
    a, b = new, old
    while True:
        if a is old:
            return fresh, a
        if b is new:
            return [], new  # new is a tail of old: nothing new in it
        if not a and not b:
            return fresh, a
        if a:
            fresh.append(a.first)
            a = a.rest
        if b:
            b = b.rest


def _freeze_plist_part(new: Any, old: Any, label: str | None) -> Any:
    fresh, shared = _plist_split(new, old)
    done = [v if type(v) in _SETTLED else _freeze(v, label, None) for v in fresh]
    if all(map(_is, done, fresh)):
        return new
    for v in reversed(done):
        shared = shared.cons(v)
    return shared


def _freeze_plist(value: Any, label: str | None, previous: Any) -> Any:
    return _freeze_plist_part(value, previous, label)


def _freeze_pdeque(value: Any, label: str | None, previous: Any) -> Any:
    left, right = pdeque_lists(value)
    old_left, old_right = pdeque_lists(previous) if isinstance(previous, _PDEQUE) else (None, None)
    new_left = _freeze_plist_part(left, old_left, label)
    new_right = _freeze_plist_part(right, old_right, label)
    if new_left is left and new_right is right:
        return value
    return pdeque_with_lists(value, new_left, new_right)


# -- reading -----------------------------------------------------------------------------


def read_form(value: Any, label: str | None = None) -> Any:
    """What a read hands out: plain-looking, read-only, renderable by Streamlit."""
    kind = type(value)
    if kind in _SETTLED:
        return value
    try:
        return _read(value, label)
    except RecursionError:
        raise _too_deep(label) from None


def _read(value: Any, label: str | None) -> Any:
    kind = type(value)
    if kind in _SETTLED or (kind in _LABELLED and value._ss_key == label):
        return value
    if isinstance(value, PMap):
        return _make_dict({k: _read(v, label) for k, v in value.items()}, label)
    if isinstance(value, _SEQUENCES):
        return _make_list([_read(v, label) for v in cast("Iterable[Any]", value)], label)
    if isinstance(value, PSet):
        return frozenset(value)
    return _freeze(value, label, None)  # plain containers (relabelled if need be), the rest as is


def thaw(value: Any) -> Any:
    """A deep, mutable plain copy of a read or stored value."""
    kind = type(value)
    if kind in _SETTLED and kind is not frozenset:
        return value
    if isinstance(value, (FrozenDeque, collections.deque)):
        return collections.deque(map(thaw, value), value.maxlen)
    if isinstance(value, collections.Counter):
        return collections.Counter({k: thaw(v) for k, v in value.items()})
    if isinstance(value, (FrozenDefaultDict, collections.defaultdict)):
        return collections.defaultdict(value.default_factory, {k: thaw(v) for k, v in value.items()})
    if isinstance(value, (dict, PMap)):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, *_SEQUENCES)):
        return [thaw(v) for v in cast("Iterable[Any]", value)]
    if isinstance(value, (PSet, frozenset, set)):
        return set(value)
    if isinstance(value, tuple):
        items = [thaw(v) for v in value]
        if kind is tuple:
            return tuple(items)
        make = getattr(value, "_make", None)
        return make(items) if make is not None else tuple(items)
    if isinstance(value, _ATOMIC_BASES):
        return value
    return copy.deepcopy(value)


# -- change detection ----------------------------------------------------------------------

_MAX_KINDS = 12  # more distinct item types than this in one list: compared item by item


def unchanged(old: Any, new: Any) -> bool:
    """Whether writing stored ``new`` over stored ``old`` changes nothing.

    Exact: the same type all the way down (``1``, ``1.0``, ``True`` and
    ``np.int64(1)`` are all different), dicts in the same order, Decimals
    with the same exponent, datetimes and times in the same tzinfo with the
    same fold, floats with the same sign (``-0.0`` is not ``0.0``), and NaN
    the same as NaN. numpy scalars compare by dtype and bytes; DataFrames,
    Series, Index and ndarrays by content (C speed); pyrsistent values and
    every other object stored by reference by identity alone.
    """
    if old is new:
        return True
    kind = type(new)
    if kind is not type(old):
        return False
    if kind in _EQ_KINDS:
        return bool(old == new)
    try:
        return (_SAME.get(kind) or _comparator(kind))(old, new)
    except Exception:  # an element with a broken __eq__, a value too deep: a change
        return False


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind in _EQ_KINDS:
        return bool(a == b)
    return (_SAME.get(kind) or _comparator(kind))(a, b)


def _identity(a: Any, b: Any) -> bool:
    return a is b


def _same_float(a: float, b: float) -> bool:
    if a == b:
        return a != 0.0 or copysign(1.0, a) == copysign(1.0, b)
    return a != a and b != b  # NaN is the only value not equal to itself


def _doubles(items: Any) -> bytes:
    out = array("d")
    out.fromlist(items if isinstance(items, list) else list(items))  # 3x faster than array("d", items)
    return out.tobytes()


def _same_floats(a: Any, b: Any) -> bool:
    if a == b:
        # Equal item by item (a NaN only equals itself, the same object):
        # only the sign of a zero can still differ.
        return _same_zeros(a, b)
    nans = list(map(isnan, a))
    if True not in nans or nans != list(map(isnan, b)):
        return False
    # NaNs at the same places (of any bit pattern: 0 * inf is not
    # float("nan") bit for bit): compare the rest.
    keep = list(map(_not, nans))
    rest_a, rest_b = list(compress(a, keep)), list(compress(b, keep))
    return rest_a == rest_b and _same_zeros(rest_a, rest_b)


def _same_zeros(a: Any, b: Any) -> bool:
    """Equal float columns: whether their zeros have the same signs."""
    zeros = a.count(0.0)  # -0.0 == 0.0: counts both
    if not zeros:
        return True
    if zeros > _CHUNK:
        return _doubles(a) == _doubles(b)
    i = -1
    for _ in range(zeros):  # list.index finds the next zero at C speed
        i = a.index(0.0, i + 1)
        if copysign(1.0, a[i]) != copysign(1.0, b[i]):
            return False
    return True


def _same_complex(a: complex, b: complex) -> bool:
    return _same_float(a.real, b.real) and _same_float(a.imag, b.imag)


def _same_decimal(a: decimal.Decimal, b: decimal.Decimal) -> bool:
    return a.as_tuple() == b.as_tuple()  # sign, digits, exponent: "2.5" is not "2.50"


def _same_tzinfo(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and repr(a) == repr(b))


def _same_clock(a: Any, b: Any) -> bool:
    # datetime/time ==: the same instant (another tzinfo) or the same wall
    # time (the same tzinfo, fold ignored); a reader sees tzinfo and fold too.
    return bool(a == b) and a.fold == b.fold and _same_tzinfo(a.tzinfo, b.tzinfo)


def _same_timezone(a: datetime.timezone, b: datetime.timezone) -> bool:
    return a == b and repr(a) == repr(b)  # timezone == ignores the name


def _same_range(a: range, b: range) -> bool:
    return (a.start, a.stop, a.step) == (b.start, b.stop, b.step)


def _same_path(a: Any, b: Any) -> bool:
    return bool(a == b) and str(a) == str(b)


def _same_seq(a: Any, b: Any) -> bool:
    """Lists or tuples of the same type, compared column by column: the items
    of each type at once, at C speed (``list ==`` for exact types,
    the raw doubles of the floats, the keys and values of dicts flattened)."""
    n = len(a)
    if n != len(b):
        return False
    if not n:
        return True
    if n > _CHUNK:
        kind = _kind_of(a)
        if kind is not None:
            other = _kind_of(b)
            if other is not None:  # both long lists of one known type each: no pass over the types
                return kind is other and _same_column(kind, a, b)
    first = type(a[0])
    types = list(map(type, a))
    if types.count(first) == n:  # one type: counting is twice as fast as a set
        if list(map(type, b)).count(first) != n:
            return False
        if first in _EQ_KINDS:
            return bool(a == b)
        return _same_column(first, a, b)
    if types != list(map(type, b)):
        return False
    kinds = set(types)
    eq_kinds = _EQ_KINDS
    if kinds <= eq_kinds:
        return bool(a == b)  # the types match item by item: == is exact
    if len(kinds) > _MAX_KINDS:
        return all(map(_same, a, b))
    rest = kinds - eq_kinds
    if len(rest) < len(kinds):
        plain = list(map(eq_kinds.__contains__, types))
        if list(compress(a, plain)) != list(compress(b, plain)):
            return False
    for kind in rest:
        mine = list(map(_is, types, repeat(kind)))
        if not _same_column(kind, list(compress(a, mine)), list(compress(b, mine))):
            return False
    return True


def _same_column(kind: type, a: Any, b: Any) -> bool:
    """Sequences of equal length whose items are all of type ``kind``."""
    if kind in _EQ_KINDS:
        return bool(a == b)
    if kind in _FLOAT_KINDS:
        return _same_floats(a, b)
    same = _SAME.get(kind) or _comparator(kind)
    if same is _same_seq:  # lists, tuples, namedtuples: their items as one column
        return list(map(len, a)) == list(map(len, b)) and _same_seq(
            list(chain.from_iterable(a)), list(chain.from_iterable(b))
        )
    if same is _same_dict:  # dicts: all keys (order included) as one column, all values as another
        values = dict.values
        return (
            list(map(len, a)) == list(map(len, b))
            and _same_seq(list(chain.from_iterable(a)), list(chain.from_iterable(b)))
            and _same_seq(
                list(chain.from_iterable(map(values, a))), list(chain.from_iterable(map(values, b)))
            )
        )
    if kind in _EQ_KINDS:  # learned just now
        return bool(a == b)
    if same is _identity:
        return all(map(_is, a, b))
    return all(map(same, a, b))


def _same_dict(a: Any, b: Any) -> bool:
    if len(a) != len(b):
        return False
    return _same_seq(list(a), list(b)) and _same_seq(  # the same keys, of the same types, in the same order
        list(a.values()), list(b.values())
    )


def _same_deque(a: Any, b: Any) -> bool:
    return bool(a.maxlen == b.maxlen) and _same_seq(a, b)


def _same_defaultdict(a: Any, b: Any) -> bool:
    return a.default_factory is b.default_factory and _same_dict(a, b)


def _same_set(a: Any, b: Any) -> bool:
    if len(a) != len(b):
        return False
    kinds = set(map(type, a))
    if kinds != set(map(type, b)):
        return False
    if kinds <= _EQ_KINDS:
        if len(kinds) <= 1:
            return bool(a == b)
        # {0, True} == {False, 1}: pair each item with its type.
        return set(zip(map(type, a), a, strict=True)) == set(zip(map(type, b), b, strict=True))
    return set(map(_exact_key, a)) == set(map(_exact_key, b))


def _exact_key(x: Any) -> Any:
    """A hashable stand-in for the set item ``x``, equal for items a reader
    cannot tell apart (by the same rules as ``_same``)."""
    kind = type(x)
    if kind in _EQ_KINDS:
        return (kind, x)
    same = _SAME.get(kind) or _comparator(kind)
    if kind in _EQ_KINDS:  # learned just now
        return (kind, x)
    if same is _same_float:
        return (kind, "nan") if x != x else (kind, x, copysign(1.0, x))
    if same is _same_seq:
        return (kind, tuple(map(_exact_key, x)))
    if same is _same_set:
        return (kind, frozenset(map(_exact_key, x)))
    if same is _same_complex:
        return (kind, _exact_key(x.real), _exact_key(x.imag))
    if same is _same_decimal:
        return (kind, x.as_tuple())
    if same is _same_clock:
        return (kind, x, x.fold, repr(x.tzinfo))
    if same is _same_range:
        return (kind, x.start, x.stop, x.step)
    if same is _identity:
        return (kind, id(x))
    if same is _same_numpy_scalar:
        return (kind, x.dtype.str, x.tobytes())
    return (kind, x, repr(x))  # timezones, paths, subclasses of scalars: repr shows what == hides


def _is_truth(r: Any) -> bool:
    """``r`` is a plain truth value (bool, or numpy's bool scalar), not an
    array or some object that would be true whatever it says."""
    kind = type(r)
    return kind is bool or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"))


def _same_numpy_scalar(a: Any, b: Any) -> bool:
    # dtype and raw bytes: -0.0 is not 0.0, a NaN or NaT is itself, and
    # datetime64 units count ('2024-01-01' is not '2024-01-01T00:00').
    return bool(a.dtype == b.dtype) and bool(a.tobytes() == b.tobytes())


def _same_ndarray(a: Any, b: Any) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    np = sys.modules["numpy"]
    if np.array_equal(a, b):
        return True
    return a.dtype.kind in "fcmM" and bool(np.array_equal(a, b, equal_nan=True))


def _same_frame(a: Any, b: Any) -> bool:
    return (
        a.shape == b.shape
        and a.columns.identical(b.columns)  # labels, their dtype and names
        and a.index.identical(b.index)
        and list(a.dtypes) == list(b.dtypes)
        and bool(a.equals(b))  # values, NaN equal to NaN
    )


def _same_series(a: Any, b: Any) -> bool:
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and _same(a.name, b.name)
        and a.index.identical(b.index)
        and bool(a.equals(b))
    )


def _same_index(a: Any, b: Any) -> bool:
    return bool(a.identical(b))


def _subclass_rule(base_rule: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """For subclasses of builtin scalars (pd.Timestamp, str or int
    subclasses): their own == must say equal with a plain truth value, the
    builtin's exactness rule too, and their extra attributes must match."""

    def same(a: Any, b: Any) -> bool:
        r = a == b
        if not _is_truth(r) or not r or not base_rule(a, b):
            return False
        if getattr(a, "unit", None) != getattr(b, "unit", None):  # pd.Timestamp/Timedelta resolution
            return False
        return bool(getattr(a, "__dict__", None) == getattr(b, "__dict__", None))

    return same


_SCALAR_BASES: tuple[tuple[type, Callable[[Any, Any], bool]], ...] = (
    (datetime.datetime, _same_clock),
    (datetime.time, _same_clock),
    (datetime.date, lambda a, b: True),
    (datetime.timedelta, lambda a, b: True),
    (float, lambda a, b: _same_float(float(a), float(b))),
    (int, lambda a, b: int.__eq__(a, b) is True),
    (str, lambda a, b: str.__eq__(a, b) is True),
    (bytes, lambda a, b: bytes.__eq__(a, b) is True),
    (decimal.Decimal, _same_decimal),
    (fractions.Fraction, lambda a, b: True),
    (complex, lambda a, b: _same_complex(complex(a), complex(b))),
)


def _classify(kind: type) -> Callable[[Any, Any], bool]:
    module = kind.__module__
    if module == "numpy":
        np = sys.modules.get("numpy")
        if np is not None:
            if kind is np.ndarray:
                return _same_ndarray
            if issubclass(kind, np.generic) and not issubclass(kind, (np.void, np.object_)):
                if issubclass(kind, (np.integer, np.bool_, np.str_, np.bytes_)):
                    _EQ_KINDS.add(kind)  # == gives a numpy bool and is exact for one type
                elif kind is np.float64:
                    _FLOAT_KINDS.add(kind)  # a float subclass: its double is the value
                return _same_numpy_scalar
        return _identity
    if module.startswith("pandas"):
        pd = sys.modules.get("pandas")
        if pd is not None:
            if issubclass(kind, pd.DataFrame):
                return _same_frame
            if issubclass(kind, pd.Series):
                return _same_series
            if issubclass(kind, pd.Index):
                return _same_index
            if kind is type(pd.NaT):
                return _identity  # a singleton that is not == itself, like NaN
    if issubclass(kind, _ATOMIC_BASES):
        return _same_path if issubclass(kind, pathlib.PurePath) else _identity
    if issubclass(kind, tuple):
        return _same_seq  # namedtuples
    for base, rule in _SCALAR_BASES:
        if issubclass(kind, base):
            return _subclass_rule(rule)
    return _identity  # by reference: the same object or a change


def _comparator(kind: type) -> Callable[[Any, Any], bool]:
    same = _SAME.get(kind)
    if same is None:
        same = _classify(kind)
        if len(_SAME) < _LEARNED_MAX:
            _SAME[kind] = same
    return same


# -- content tokens of arrays and frames ------------------------------------------------------


def content_token(value: Any) -> object | None:
    """A fingerprint of the content of a pandas DataFrame, Series or Index or
    a numpy ndarray (shape, dtypes, labels and values); None for any other
    object. Equal tokens mean equal content, so the store can tell whether an
    object stored by reference was changed in place.

    Numeric, bool, datetime and bytes arrays: their raw bytes (SHA-1, C
    speed). Object cells (object dtype, in numpy or pandas): each cell's type
    and an exact encoding of its content (``_cell_bytes``: the text of a str,
    the digits of an int, the bits of a float, the pickle of anything else,
    so nested lists, dicts and arrays count in full), hence -1 → -2 in place
    is a change, unlike with ``hash()``. Not fingerprinted: what pickle does
    not see (an object's state outside its ``__reduce__``), and unpicklable
    cells (a lock, a lambda...), which count by identity only. Extension
    dtypes and MultiIndex labels: pandas' ``hash_pandas_object`` (64 bits a
    cell)."""
    kind = type(value)
    module = kind.__module__
    if module == "numpy":
        np = sys.modules.get("numpy")
        if np is not None and kind is np.ndarray:
            return (kind, value.shape, value.dtype, _array_digest(np, value))
        return None
    if not module.startswith("pandas"):
        return None
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    if isinstance(value, pd.DataFrame):
        cols = [_values_digest(pd, value.iloc[:, i]) for i in range(value.shape[1])]
        return (
            kind,
            value.shape,
            tuple(value.dtypes),
            _index_token(pd, value.columns),
            _index_token(pd, value.index),
            _digest_all(cols),
        )
    if isinstance(value, pd.Series):
        return (
            kind,
            value.shape,
            value.dtype,
            _name_token(value.name),
            _index_token(pd, value.index),
            _values_digest(pd, value),
        )
    if isinstance(value, pd.Index):
        return _index_token(pd, value)
    return None


def _sha1() -> hashlib._Hash:
    return hashlib.sha1(usedforsecurity=False)  # a change detector, not a seal; ~2 GB/s


def _digest_all(parts: Iterable[bytes]) -> bytes:
    h = _sha1()
    for part in parts:
        h.update(part)
    return h.digest()


def _name_token(name: Any) -> Any:
    try:
        hash(name)
    except TypeError:
        return repr(name)
    return (type(name), name)


def _array_digest(np: Any, arr: Any) -> bytes:
    if arr.dtype.hasobject:
        return _object_digest(np, arr.ravel(order="K"))
    h = _sha1()
    # Through uint8: datetime64 arrays do not export a buffer of their own.
    h.update(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
    return h.digest()


def _object_digest(np: Any, flat: Any) -> bytes:
    """Cells of an object array: the type of each and the exact bytes of its
    content, each cell's length framing it."""
    h = _sha1()
    n = len(flat)
    cells = flat.tolist()
    types = list(map(type, cells))
    h.update(np.fromiter(map(id, types), dtype=np.int64, count=n))
    if set(types) <= _SCALARS:  # text, bytes, numbers, None: the list's repr is exact, at C speed
        h.update(repr(cells).encode("utf-8", "surrogatepass"))
        return h.digest()
    parts = list(map(_cell_bytes, cells))
    h.update(np.fromiter(map(len, parts), dtype=np.int64, count=n))
    h.update(b"".join(parts))
    return h.digest()


def _cell_bytes(x: Any) -> bytes:
    """The content of one object cell, exactly (its type is hashed apart)."""
    if type(x) in _SCALARS:
        return repr(x).encode("utf-8", "surrogatepass")  # -0.0 is not 0.0; every NaN is nan
    try:
        return pickle.dumps(x, protocol=5)
    except Exception:  # unpicklable: by identity only
        return b"id:%d" % id(x)


def _values_digest(pd: Any, values: Any) -> bytes:
    """The values of a Series or an Index."""
    np = sys.modules["numpy"]
    if isinstance(values.dtype, np.dtype):
        return _array_digest(np, values.to_numpy())
    # Extension dtypes (categorical, nullable ints, tz-aware, arrow strings...): pandas hashes them.
    return _digest_all([pd.util.hash_pandas_object(values, index=False).to_numpy()])


def _index_token(pd: Any, index: Any) -> tuple[Any, ...]:
    names = tuple(_name_token(n) for n in index.names)
    if isinstance(index, pd.RangeIndex):
        return (type(index), names, index.start, index.stop, index.step)
    if isinstance(index, pd.MultiIndex):
        values = _digest_all([pd.util.hash_pandas_object(index, index=False).to_numpy()])
        return (type(index), names, tuple(index.dtypes), len(index), values)
    return (type(index), names, index.dtype, len(index), _values_digest(pd, index))


# -- the type registry: every type the value model knows up front, once -----------------------


def _register(kind: Any, freeze: Freezer | None, same: Comparator | None, *traits: str) -> None:
    """``kind``'s row: ``freeze`` its stored form (None: settled, stored as it
    is), ``same`` the exact comparison of two of its values (None: ``==`` is
    exact), and the traits ``labelled``, ``floats``, ``pyrsistent``, ``scalar``."""
    _REGISTRY[kind] = (freeze, same, frozenset(traits))
    if freeze is None:
        _SETTLED.add(kind)
        _FROZEN.add(kind)
    else:
        _FREEZERS[kind] = freeze
    if same is None:
        _EQ_KINDS.add(kind)
    else:
        _SAME[kind] = same
    for trait, view in (
        ("labelled", _LABELLED),
        ("labelled", _FROZEN),
        ("floats", _FLOAT_KINDS),
        ("pyrsistent", _PYRSISTENT_TYPES),
        ("scalar", _SCALARS),
    ):
        if trait in traits:
            view.add(kind)


def _keep(value: Any, label: str | None, previous: Any) -> Any:
    return value


for _kind, _freezer, _same_rule, *_traits in (
    # settled: immutable, holding nothing mutable
    (type(None), None, None, "scalar"),
    (bool, None, None, "scalar"),
    (int, None, None, "scalar"),
    (float, None, _same_float, "floats", "scalar"),  # -0.0 == 0.0, nan != nan
    (str, None, None, "scalar"),
    (bytes, None, None, "scalar"),
    (complex, None, _same_complex),
    (decimal.Decimal, None, _same_decimal),  # "2.5" == "2.50"
    (fractions.Fraction, None, None),
    (datetime.date, None, None),
    (datetime.datetime, None, _same_clock),  # tzinfo and fold
    (datetime.time, None, _same_clock),
    (datetime.timedelta, None, None),
    (datetime.timezone, None, _same_timezone),  # == ignores the name
    (uuid.UUID, None, None),
    (range, None, _same_range),
    (type(Ellipsis), None, None),
    (frozenset, None, _same_set),  # items are hashable: no plain list, dict or set inside
    # plain containers: frozen into the read-only ones below (never compared themselves)
    (list, _freeze_list, _same_seq),
    (tuple, _freeze_tuple, _same_seq),
    (dict, _freeze_dict, _same_dict),
    (set, _freeze_set, _same_set),
    (bytearray, _freeze_bytearray, _identity),
    (collections.deque, _freeze_deque, _identity),
    (collections.Counter, _freeze_counter, _identity),
    (collections.defaultdict, _freeze_defaultdict, _identity),
    (collections.OrderedDict, _freeze_dict, _identity),
    # the read-only containers: stored and read form at once
    (FrozenList, _freeze_frozen_list, _same_seq, "labelled"),
    (FrozenDeque, _freeze_deque, _same_deque, "labelled"),
    (FrozenDict, _freeze_frozen_dict, _same_dict, "labelled"),
    (FrozenCounter, _freeze_counter, _same_dict, "labelled"),
    (FrozenDefaultDict, _freeze_defaultdict, _same_defaultdict, "labelled"),
    # pyrsistent: stored as they are, frozen inside; compared by identity (their == is O(n) Python)
    (_PMAP, _freeze_pmap, _identity, "pyrsistent"),
    (_PSET, _keep, _identity, "pyrsistent"),  # items are hashable: nothing plain inside
    (_PLIST[0], _freeze_plist, _identity, "pyrsistent"),
    (_PLIST[1], _freeze_plist, _identity, "pyrsistent"),
    (_PDEQUE, _freeze_pdeque, _identity, "pyrsistent"),
    (_PY_PVECTOR, _freeze_pvector, _identity, "pyrsistent"),
    (_C_PVECTOR, _freeze_pvector, _identity, "pyrsistent"),
):
    if _kind is not None:  # no C vector without pyrsistent's C extension
        _register(_kind, _freezer, _same_rule, *_traits)

# For the store (server_state/_store.py): which stored values need no work.
SCALAR_TYPES: frozenset[type] = frozenset(_SCALARS)
"""Immutable builtin scalars: ``freeze`` returns them as they are, and they
have no content token."""
TOKENLESS_TYPES: frozenset[type] = frozenset(_REGISTRY)
"""Types ``content_token`` always answers None for (every registered one):
asking would only cost."""


def needs_token(kind: type) -> bool:
    """Whether values of type ``kind`` may have a content token (numpy and
    pandas types: the store then fingerprints them to see in-place changes)."""
    module = kind.__module__
    return module == "numpy" or module.startswith("pandas")


def tokens_of(writes: dict[str, Any]) -> dict[str, Any]:
    """The content fingerprints of the values of ``writes`` that have one."""
    return {k: t for k, v in writes.items() if needs_token(type(v)) and (t := content_token(v)) is not None}
