"""The map a ``transact(fn)`` receives: a pyrsistent ``PMap`` that records
which keys ``fn`` reads and writes.

A transaction then conflicts only with commits to those keys and costs
O(keys touched), not O(keys in the state). Every map derived from it with
``set``/``remove``/``discard``/``update``/``update_with`` is again a
``TxMap`` sharing the same record. Anything that looks at the whole map
(iteration, ``len``, ``==``, an evolver, ``transform``) marks the record
``read_all``: the transaction then conflicts with any commit, as a plain
optimistic transaction would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pyrsistent import PMap

from ._keys import check_key, normalise_key
from ._pcompat import pmap_as

__all__ = ["TxMap", "TxRecord", "normalise_key"]


class TxRecord:
    __slots__ = ("read", "read_all", "written")

    def __init__(self) -> None:
        self.read: set[str] = set()
        # Ordered: keys a transaction creates appear in the order it set them
        # (dict's update, whose pairs go through here, keeps that order).
        self.written: dict[str, None] = {}
        self.read_all = False


def _whole(name: str) -> Callable[..., Any]:
    """A PMap method that looks at the whole map: marks ``read_all``."""
    method = getattr(PMap, name)

    def whole(self: TxMap, *args: Any, **kwargs: Any) -> Any:
        self.record.read_all = True
        return method(self, *args, **kwargs)

    whole.__name__ = name
    whole.__doc__ = method.__doc__
    return whole


class TxMap(PMap[str, Any]):
    __slots__ = ("record",)
    record: TxRecord

    @staticmethod
    def wrap(values: PMap[str, Any], record: TxRecord) -> TxMap:
        out: TxMap = pmap_as(TxMap, values)
        out.record = record
        return out

    @staticmethod
    def unwrap(values: PMap[str, Any]) -> PMap[str, Any]:
        if isinstance(values, TxMap):
            return pmap_as(PMap, values)  # type: ignore[no-any-return]
        return values

    def _derived(self, values: PMap[str, Any]) -> TxMap:
        return values if isinstance(values, TxMap) else TxMap.wrap(values, self.record)

    # -- single-key reads ---------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        key = check_key(key)
        self.record.read.add(key)
        return PMap.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        key = check_key(key)
        self.record.read.add(key)
        return PMap.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        key = normalise_key(key)
        self.record.read.add(key)
        return PMap.__contains__(self, key)

    # -- single-key writes ----------------------------------------------------------

    def set(self, key: str, val: Any) -> TxMap:
        key = check_key(key)
        self.record.written[key] = None
        return self._derived(PMap.evolver(self).set(key, val).persistent())

    def remove(self, key: str) -> TxMap:
        key = check_key(key)
        self.record.written[key] = None
        return self._derived(PMap.evolver(self).remove(key).persistent())

    def discard(self, key: str) -> TxMap:
        key = check_key(key)
        self.record.written[key] = None
        try:
            return self.remove(key)
        except KeyError:
            return self

    def update(self, *maps: Mapping[str, Any]) -> TxMap:
        out = self
        for mapping in maps:
            for key, value in mapping.items():
                out = out.set(key, value)
        return out

    def update_with(self, update_fn: Callable[[Any, Any], Any], *maps: Mapping[str, Any]) -> TxMap:
        out = self
        for mapping in maps:
            for key, value in mapping.items():
                out = out.set(key, update_fn(out[key], value) if key in out else value)
        return out

    __add__ = update
    __or__ = update

    # -- whole-map reads ------------------------------------------------------------

    __iter__ = _whole("__iter__")
    __len__ = _whole("__len__")
    __eq__ = _whole("__eq__")
    __ne__ = _whole("__ne__")
    __lt__ = _whole("__lt__")
    __le__ = _whole("__le__")
    __gt__ = _whole("__gt__")
    __ge__ = _whole("__ge__")
    __hash__ = _whole("__hash__")
    __repr__ = _whole("__repr__")
    __str__ = _whole("__str__")
    __reduce__ = _whole("__reduce__")
    keys = _whole("keys")
    values = _whole("values")
    items = _whole("items")
    iterkeys = _whole("iterkeys")
    itervalues = _whole("itervalues")
    iteritems = _whole("iteritems")
    copy = _whole("copy")
    evolver = _whole("evolver")
    transform = _whole("transform")
