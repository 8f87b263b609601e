"""pyrsistent's private layout, in one place: every read the value model
makes beyond pyrsistent's public API (docs/pyrsistent.md lists each one, what
it buys and the benchmark row that shows it).

Nothing else in server_state reads a private name of pyrsistent's
(tests/test_pcompat.py checks it). The layout is checked when this module is
imported: a pyrsistent release without it fails here, naming the version and
the doc, not later inside a write.

pyrsistent has two vectors: the C extension's (``pvectorc``, used by
``pvector()`` when it imports) and the pure-Python ``PythonPVector`` (always
there, and what ``pvector()`` gives without the C extension: on a Python with
no pyrsistent wheel, such as 3.13 for 0.20, or with
``PYRSISTENT_NO_C_EXTENSION`` set). The library keeps large vectors as
pure-Python ones, whose trie it reads to tell what a new version changed.
Without the C extension there is no C vector: ``C_PVECTOR`` is None, and
nothing must be converted (converting a vector to its own type copies it:
identity lost, and an append O(n)).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from itertools import chain, compress, count
from operator import is_not
from typing import Any

from pyrsistent import PVector, pdeque, plist, pmap, pset, pvector

__all__ = [
    "C_PVECTOR",
    "DOC",
    "PDEQUE",
    "PLISTS",
    "PMAP",
    "PSET",
    "PY_PVECTOR",
    "SHIFT",
    "layout_error",
    "pdeque_lists",
    "pdeque_with_lists",
    "pmap_as",
    "pmap_buckets",
    "pmap_with_python_buckets",
    "python_pvector",
    "vector_changed",
]

DOC = "docs/pyrsistent.md"

# Typed Any: checks like `type(v) is PMAP` should not narrow v for mypy.
PMAP: Any = type(pmap())
PSET: Any = type(pset())
PDEQUE: Any = type(pdeque())
PLISTS: tuple[Any, Any] = (type(plist()), type(plist([1])))  # the empty list is a type of its own

SHIFT = 5  # bits per level of the pure-Python vector's trie (pyrsistent's _pvector.py)
_BRANCH = 1 << SHIFT


def _pyrsistent_version() -> str:
    try:
        return version("pyrsistent")
    except PackageNotFoundError:  # pragma: no cover - vendored or renamed
        return "unknown"


def layout_error(missing: list[str]) -> ImportError:
    """The error for a pyrsistent whose private layout is not the one read here."""
    return ImportError(
        f"server_state reads pyrsistent's private layout, and pyrsistent {_pyrsistent_version()} "
        f"does not have it ({'; '.join(missing)}). Install a pyrsistent release server_state supports "
        f"(pyproject.toml bounds it), or see {DOC} for what is read and how to support a new release."
    )


_imported: Any
try:  # private module and name, stable since 0.11
    from pyrsistent._pvector import python_pvector as _imported
except ImportError:  # pragma: no cover - checked below
    _imported = None

python_pvector: Callable[[Any], Any] = _imported
PY_PVECTOR: Any = type(_imported([])) if _imported is not None else None
_DEFAULT: Any = type(pvector())
# The C extension's vector; None when pvector() is the pure-Python one.
C_PVECTOR: Any = _DEFAULT if _DEFAULT is not PY_PVECTOR else None


def _layout_missing() -> list[str]:
    """What of the layout read below this pyrsistent lacks (empty: all there)."""
    if _imported is None:
        return ["pyrsistent._pvector.python_pvector"]
    missing: list[str] = []
    try:
        v: Any = python_pvector(range(2 * _BRANCH + 3))
        ok = (
            v._count == 2 * _BRANCH + 3
            and v._shift == SHIFT
            and v._tail_offset == 2 * _BRANCH
            and len(v._tail) == 3
            and [len(node) for node in v._root] == [_BRANCH, _BRANCH]
            and PY_PVECTOR._node_for(v, _BRANCH) is v._root[1]
        )
        if not ok:
            missing.append(
                "PythonPVector's trie (_count, _shift, _root, _tail, _tail_offset) has another shape"
            )
    except (AttributeError, TypeError, IndexError) as e:
        missing.append(f"PythonPVector's trie: {e}")
    try:
        m = pmap({"a": 1})
        rebuilt = PMAP.__new__(PMAP, m._size, m._buckets)
        if not isinstance(m._buckets, PVector) or dict(rebuilt) != {"a": 1}:
            missing.append("PMap(_size, _buckets) has another shape")
    except (AttributeError, TypeError) as e:
        missing.append(f"PMap's _size and _buckets: {e}")
    try:
        d: Any = pdeque([1, 2, 3], maxlen=5)
        again = PDEQUE(d._left_list, d._right_list, len(d), d.maxlen)
        if list(again) != [1, 2, 3] or not isinstance(d._left_list, PLISTS):
            missing.append("PDeque(_left_list, _right_list, length, maxlen) has another shape")
    except (AttributeError, TypeError) as e:
        missing.append(f"PDeque's _left_list and _right_list: {e}")
    return missing


_missing = _layout_missing()
if _missing:
    raise layout_error(_missing)


# -- PMap: a vector of buckets ------------------------------------------------------------


def pmap_buckets(m: Any) -> Any:
    """The bucket vector of pmap ``m`` (a PVector of lists of (key, value), or None)."""
    return m._buckets


def pmap_as(cls: Any, m: Any) -> Any:
    """A ``cls`` (PMap or a subclass) over the very buckets of pmap ``m``: O(1), shares everything."""
    return PMAP.__new__(cls, m._size, m._buckets)


def pmap_with_python_buckets(m: Any) -> Any:
    """Pmap ``m`` with its buckets as a pure-Python vector (see ``vector_changed``)."""
    return PMAP(m._size, python_pvector(m._buckets))


# -- PDeque: two plists ---------------------------------------------------------------


def pdeque_lists(d: Any) -> tuple[Any, Any]:
    """The left and right plists pdeque ``d`` is made of."""
    return d._left_list, d._right_list


def pdeque_with_lists(d: Any, left: Any, right: Any) -> Any:
    """A pdeque like ``d`` (length, maxlen) made of ``left`` and ``right``."""
    return type(d)(left, right, len(d), d.maxlen)


# -- PythonPVector: a 32-way trie and a tail ------------------------------------------------


def vector_changed(new: Any, old: Any) -> list[tuple[int, Any]]:
    """``(index, item)`` of the items of vector ``new`` that are not the very
    object ``old`` holds at that index (all of them when ``old`` is not a
    vector). Between two pure-Python vectors, only the trie nodes ``new`` does
    not share with ``old`` are looked at: an append or a ``set`` costs
    O(log n), not a pass over n items."""
    kind = type(old)
    if kind is not PY_PVECTOR and kind is not C_PVECTOR and not isinstance(old, PVector):
        return list(enumerate(new.tolist()))
    if old is new:
        return []
    if isinstance(new, PY_PVECTOR) and isinstance(old, PY_PVECTOR):
        if new._root is old._root and new._shift == old._shift:  # an append, or a set in the tail
            return _leaf_changed(old, new._tail, new._tail_offset)
        out: list[tuple[int, Any]] = []
        _trie_diff(old, new._root, new._shift, 0, old._root if new._shift == old._shift else None, out)
        out += _leaf_changed(old, new._tail, new._tail_offset)
        return out
    now, before = new.tolist(), old.tolist()
    changed = list(compress(count(), map(is_not, now, before)))
    out = [(i, now[i]) for i in changed] if changed else []
    if len(now) > len(before):
        out += zip(count(len(before)), now[len(before) :])
    return out


def _leaf_changed(
    old: Any, node: list[Any], base: int, other: list[Any] | None = None
) -> list[tuple[int, Any]]:
    """The items of the 32-item block ``node`` of a new vector, at offset
    ``base``, that are not the very objects of ``old``'s block there
    (``other``, when the caller has it)."""
    if base >= old._count:
        return list(zip(count(base), node))
    if other is None:
        other = old._tail if base == old._tail_offset else PY_PVECTOR._node_for(old, base)
    if other is node:
        return []
    out = [(i, node[i - base]) for i in compress(count(base), map(is_not, node, other))]
    if len(node) > len(other):
        out += zip(count(base + len(other)), node[len(other) :])
    return out


def _trie_diff(
    old: Any, node: list[Any], level: int, base: int, other: list[Any] | None, out: list[Any]
) -> None:
    """Walk a new vector's trie down only the nodes that are not ``old``'s own
    (``other``: ``old``'s node at the same place): a ``set`` or a tail pushed
    into the tree visits one path."""
    if other is None and level == old._shift and base == 0:
        other = old._root  # the tree grew a level: old's root is our leftmost child
    if node is other:
        return
    if level == 0:
        out += _leaf_changed(old, node, base, other)
        return
    below = level - SHIFT
    if other is None:
        for k, child in enumerate(node):
            _trie_diff(old, child, below, base + (k << level), None, out)
        return
    for k in chain(compress(count(), map(is_not, node, other)), range(len(other), len(node))):
        _trie_diff(old, node[k], below, base + (k << level), other[k] if k < len(other) else None, out)
