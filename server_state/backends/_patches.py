"""Patches: what changed between two stored values, proved by identity.

Stored values are frozen, so an item of a new value that *is* the old
value's item (the same object) is the old item: no comparison needed. A
backend that keeps big values item by item (Redis: a list or a hash) sends
only what changed:

- a sequence whose first ``keep`` items are the very objects of the stored
  value's (an append, or a change at its end): ``keep`` and the new tail;
- a map whose changed buckets (pmap's bucket vector is shared by identity
  with the stored value's) hold few entries: the entries set and removed.

Anything identity cannot prove goes whole. Applying a patch to the value a
follower holds costs O(patch · log n).
"""

from __future__ import annotations

from itertools import compress, count
from operator import is_not as _is_not
from typing import Any

from pyrsistent import PVector, pmap

from .._errors import ServerStatePayloadError
from .._pcompat import pmap_buckets
from .._pcompat import vector_changed as _vector_changed
from .._values import FrozenList, freeze

__all__ = ["apply_map_patch", "apply_seq_patch", "map_patch", "seq_patch"]

_PMAP_TYPE: Any = type(pmap())


def seq_patch(old: Any, new: Any) -> tuple[int, list[Any]] | None:
    """``(keep, tail)`` with ``new == old[:keep] + tail``, proved by identity
    (``old[i] is new[i]`` for ``i < keep``), when the tail is at most half of
    ``new``; None otherwise."""
    if type(old) is not type(new):
        return None
    n, m = len(new), len(old)
    if type(new) is FrozenList:
        keep = next(compress(count(), map(_is_not, new, old)), min(n, m))
        if 2 * (n - keep) > n:
            return None
        return keep, list.__getitem__(new, slice(keep, n))
    changed = _vector_changed(new, old)
    keep = min(min((i for i, _ in changed), default=m), n)
    if 2 * (n - keep) > n:
        return None
    return keep, [new[i] for i in range(keep, n)]


def apply_seq_patch(key: str, base: Any, keep: int, tail: list[Any]) -> Any:
    """``base[:keep] + tail`` in ``base``'s stored form (``tail`` decoded),
    O(len(tail) · log n) for a pvector."""
    if type(base) is FrozenList:
        items = list.__getitem__(base, slice(0, keep))
        items += tail
        return freeze(items, key, previous=base)
    m = len(base)
    if keep == m:
        new = base.extend(tail)
    else:
        evolver = base.evolver()
        over = min(m - keep, len(tail))
        for i in range(over):
            evolver[keep + i] = tail[i]
        new = evolver.persistent()
        if len(tail) > over:
            new = new.extend(tail[over:])
        elif keep + len(tail) < m:
            new = new.delete(keep + len(tail), m)
    return freeze(new, key, previous=base)


_ABSENT_ENTRY: Any = object()
# Map keys whose encoding is the same bytes however the key was made (written
# here or decoded from Redis), so that a patch names the hash field Redis has.
# A frozenset, say, may encode its items in another order once decoded.
_FIELD_KEYS: frozenset[type] = frozenset({str, int, bytes, bool, float, type(None)})


def map_patch(old: Any, new: Any) -> tuple[list[tuple[Any, Any]], list[Any]] | None:
    """``(entries set, keys removed)`` turning pmap ``old`` into ``new``,
    found from the buckets ``new`` does not share with ``old``, when they are
    few; None otherwise (and when a key was replaced by an equal key of
    another type or object, which Redis would keep apart, or a key changed is
    not of a ``_FIELD_KEYS`` type)."""
    if type(old) is not _PMAP_TYPE or type(new) is not _PMAP_TYPE:
        return None
    ob, nb = pmap_buckets(old), pmap_buckets(new)
    if not isinstance(ob, PVector) or not isinstance(nb, PVector) or len(ob) != len(nb):
        return None
    changed = _vector_changed(nb, ob)
    if 8 * len(changed) > len(nb):
        return None
    sets: list[tuple[Any, Any]] = []
    dels: list[Any] = []
    for i, bucket in changed:
        before = ob[i] or ()
        now = bucket or ()
        prior = {k: (k, v) for k, v in before}
        for k, v in now:
            if type(k) not in _FIELD_KEYS:
                return None
            had = prior.pop(k, _ABSENT_ENTRY)
            if had is _ABSENT_ENTRY:
                sets.append((k, v))
            elif had[0] is not k:
                return None
            elif had[1] is not v:
                sets.append((k, v))
        if not set(map(type, prior)) <= _FIELD_KEYS:
            return None
        dels += prior
    if 2 * (len(sets) + len(dels)) > len(new):
        return None
    return sets, dels


def apply_map_patch(key: str, base: Any, sets: list[Any], dels: list[Any]) -> Any:
    """``base`` with the entries set (``sets``: key, value, key, value...,
    decoded) and ``dels`` removed, in O(patch · log n)."""
    evolver = base.evolver()
    try:
        for k in dels:
            if k in evolver:
                del evolver[k]
        it = iter(sets)
        for k, v in zip(it, it, strict=True):
            evolver[k] = v
    except Exception as e:
        raise ServerStatePayloadError(
            key, f"server_state[{key!r}]: a change from Redis cannot be applied: the data is corrupt ({e!r})."
        ) from None
    return freeze(evolver.persistent(), key, previous=base)
