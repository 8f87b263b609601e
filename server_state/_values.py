"""The value model: what the store keeps and what a read hands out.

Plain containers are frozen into read-only subclasses of ``list`` and ``dict``
(``FrozenList``, ``FrozenDict``), tuples and frozensets. Those are at once the
stored form and the read form, so reading them costs nothing, and everything
that takes a list or a dict (``st.write``, ``st.json``, ``st.radio``,
``json.dumps``, ``v + [x]``) takes them. Streamlit does not know pyrsistent
values (it renders them as a repr string and crashes on a ``PVector`` of
options), so those are stored as they are, for O(log n) ``update``, and read
through a frozen plain copy built at most once per key-version.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import enum
import fractions
import pathlib
import uuid
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, cast

from pyrsistent import PMap, PSet, PVector, pdeque, plist, pmap, pset, pvector

from ._errors import ReadOnlyValueError

__all__ = [
    "FrozenDict",
    "FrozenList",
    "freeze",
    "is_persistent",
    "read_form",
    "thaw",
    "unchanged",
]

# Values that cannot change after creation and need no copy.
_ATOMIC: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        decimal.Decimal,
        fractions.Fraction,
        datetime.date,
        datetime.datetime,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        uuid.UUID,
        range,
        type(Ellipsis),
    }
)
_ATOMIC_BASES: tuple[type, ...] = (enum.Enum, pathlib.PurePath)

_PMAP: type = type(pmap())
_PVECTOR: type = type(pvector())
_PSET: type = type(pset())
_C_PVECTOR: type = type(pvector())
_python_pvector: Callable[[Any], Any] | None
try:  # a private name of pyrsistent's, stable since 0.11; without it we keep C vectors
    from pyrsistent._pvector import python_pvector as _imported

    _python_pvector = _imported
except ImportError:  # pragma: no cover
    _python_pvector = None
_LARGE_VECTOR = 1024
_PLIST: tuple[type, ...] = (type(plist()), type(plist([1])))
_PDEQUE: type = type(pdeque())
_SEQUENCES: tuple[type, ...] = (PVector, *_PLIST, _PDEQUE)
_PERSISTENT: tuple[type, ...] = (PMap, PSet, *_SEQUENCES)


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


class FrozenList(list):  # type: ignore[type-arg]
    """A ``list`` whose mutators raise. ``v + [x]`` and ``list(v)`` give plain lists."""

    __slots__ = ("_ss_key",)
    _ss_key: str | None

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

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_restore_list, (list(self), self._ss_key))


class FrozenDict(dict):  # type: ignore[type-arg]
    """A ``dict`` whose mutators raise. ``d | other`` and ``dict(d)`` give plain dicts."""

    __slots__ = ("_ss_key",)
    _ss_key: str | None

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

    def copy(self) -> dict[Any, Any]:
        return dict(self)

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_restore_dict, (dict(self), self._ss_key))


def _make_list(items: Any, label: str | None) -> FrozenList:
    out = FrozenList(items)
    out._ss_key = label
    return out


def _make_dict(items: Any, label: str | None) -> FrozenDict:
    out = FrozenDict(items)
    out._ss_key = label
    return out


def _restore_list(items: list[Any], label: str | None) -> FrozenList:
    return _make_list(items, label)


def _restore_dict(items: dict[Any, Any], label: str | None) -> FrozenDict:
    return _make_dict(items, label)


# Types whose instances are immutable all the way down (the frozen containers
# only ever hold frozen elements: they are built here and nowhere else).
_FROZEN: frozenset[type] = _ATOMIC | {FrozenList, FrozenDict}
_LABELLED: frozenset[type] = frozenset({FrozenList, FrozenDict})


def _is_atomic(value: object) -> bool:
    return type(value) in _ATOMIC or isinstance(value, _ATOMIC_BASES)


def is_persistent(value: object) -> bool:
    """True for the pyrsistent structures stored as they are."""
    return isinstance(value, _PERSISTENT)


def freeze(value: Any, label: str | None = None) -> Any:
    """Return the stored form of ``value``, never aliasing a mutable input.

    Already-frozen elements are reused, so ``server_state[k] + [x]`` assigned
    back costs one C-level pass over the types plus the new element.
    """
    kind = type(value)
    if kind in _FROZEN:
        if kind in _LABELLED and value._ss_key != label and label is not None:
            # Assigned from another key: a shallow relabelled copy, so that a
            # mutation attempt names the key the user assigned.
            return _make_list(value, label) if kind is FrozenList else _make_dict(value, label)
        return value
    if isinstance(value, list):
        if set(map(type, value)) <= _FROZEN:
            return _make_list(value, label)
        return _make_list(_freeze_items(value, label), label)
    if isinstance(value, dict):
        if set(map(type, value.values())) <= _FROZEN:
            return _make_dict(value, label)
        frozen = _FROZEN
        return _make_dict(
            {k: v if type(v) in frozen else _freeze_nested(v, label) for k, v in value.items()}, label
        )
    if isinstance(value, tuple):
        items = [_freeze_nested(v, label) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value  # already immutable: keep the object (and namedtuple type)
        if kind is tuple:
            return tuple(items)
        make = getattr(value, "_make", None)
        return make(items) if make is not None else tuple(items)
    if isinstance(value, (set, frozenset)):
        return value if kind is frozenset else frozenset(value)
    if kind is _C_PVECTOR and _python_pvector is not None and len(value) >= _LARGE_VECTOR:
        # pyrsistent's C PVector is one GC object whose traversal visits every
        # element: each new version (every append) is young, so every minor
        # collection walks all n elements and a 100k-item append costs ~80 µs
        # instead of ~5. The pure-Python PVector's nodes are GC objects of
        # their own: a new version adds O(log n) young ones. Same API.
        return _python_pvector(value)
    return value  # atomic, pyrsistent (stored as is) or opaque (stored by reference)


_CHUNK = 64


def _freeze_items(items: list[Any], label: str | None) -> list[Any]:
    """Freeze a list's elements, visiting one by one only the chunks that hold
    something not frozen yet: ``read + [new]`` assigned back is a C-speed
    type scan of the old elements plus the work on the new one."""
    out: list[Any] = []
    frozen = _FROZEN
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        if set(map(type, chunk)) <= frozen:
            out += chunk
        else:
            out += [v if type(v) in frozen else _freeze_nested(v, label) for v in chunk]
    return out


def _freeze_nested(value: Any, label: str | None) -> Any:
    # Inside a plain container the stored form is also the read form, so a
    # pyrsistent element becomes its frozen plain copy here.
    if is_persistent(value):
        return read_form(value, label)
    return freeze(value, label)


def read_form(value: Any, label: str | None = None) -> Any:
    """What a read hands out: plain-looking, read-only, renderable by Streamlit."""
    kind = type(value)
    if kind in _FROZEN:
        return value
    if isinstance(value, PMap):
        return _make_dict({k: read_form(v, label) for k, v in value.items()}, label)
    if isinstance(value, _SEQUENCES):
        return _make_list([read_form(v, label) for v in cast("Iterable[Any]", value)], label)
    if isinstance(value, PSet):
        return frozenset(value)
    if isinstance(value, (list, dict, tuple, set)):
        return freeze(value, label)  # a plain container held inside a pyrsistent one
    return value


def thaw(value: Any) -> Any:
    """A deep, mutable plain copy of a read or stored value."""
    if isinstance(value, (dict, PMap)):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, *_SEQUENCES)):
        return [thaw(v) for v in cast("Iterable[Any]", value)]
    if isinstance(value, (PSet, frozenset)):
        return set(value)
    if type(value) is tuple:
        return tuple(thaw(v) for v in value)
    if _is_atomic(value) or isinstance(value, (frozenset, tuple)):
        return value
    return copy.deepcopy(value)


_EQ_COMPARABLE: frozenset[type] = _FROZEN | {tuple, frozenset}


def unchanged(old: Any, new: Any) -> bool:
    """Whether writing stored ``new`` over stored ``old`` changes nothing.

    Identity first; equality only for plain data, where it is exact and runs
    in C; types must match (``1``, ``1.0`` and ``True`` are equal but a write
    of one over another is a change); pyrsistent and opaque values compare by
    identity alone (pyrsistent's ``==`` is O(n) Python).
    """
    if old is new:
        return True
    kind = type(new)
    if kind is not type(old):
        return False
    if kind not in _EQ_COMPARABLE and not isinstance(new, _ATOMIC_BASES):
        return False
    try:
        return bool(old == new) and _same_types(old, new)
    except Exception:  # an element with a broken __eq__ counts as a change
        return False


def _same_types(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return all(map(_same_types, a, b))
    if isinstance(a, dict):
        b_keys = {k: k for k in b}  # b's own key objects, to compare their types
        return all(type(k) is type(b_keys[k]) and _same_types(v, b[k]) for k, v in a.items())
    if isinstance(a, frozenset):
        return {(type(x), x) for x in a} == {(type(x), x) for x in b}
    return True

