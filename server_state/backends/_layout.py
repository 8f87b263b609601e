"""How a backend lays out what it stores, shared by the Redis and SQLite
committers: big values item by item, and a commit's origin as text.

A FrozenList or pvector of ``LAYOUT_MIN`` items or more is kept item by item
(each item one msgpack object, tagged as the codec tags values), a pmap as
its entries (msgpack key -> msgpack value); the key's payload is then a
two-byte header: ``L`` or ``H``, then the kind of container
(``SEQ_KINDS``/``MAP_KINDS``). A change of such a value travels as a patch
(``backends._patches``) when that is smaller than the value.
"""

from __future__ import annotations

import json
from typing import Any

from pyrsistent import PVector, pmap, pvector

from .._base import LOCAL, Origin
from .._errors import ServerStateError, ServerStatePayloadError
from .._pcompat import C_PVECTOR as _C_PVECTOR
from .._pcompat import PY_PVECTOR as _PY_PVECTOR
from .._pcompat import pmap_buckets
from .._pcompat import python_pvector as _python_pvector
from .._values import FrozenList, freeze

__all__ = [
    "LAYOUT_MIN",
    "MAP_KINDS",
    "SEQ_KINDS",
    "build_value",
    "is_header",
    "layout_header",
    "origin_of",
    "origin_text",
]

LAYOUT_MIN = 64
_SEQ = b"L"
_MAP = b"H"
SEQ_KINDS: dict[type, bytes] = {FrozenList: b"l", _C_PVECTOR: b"c"}
if _PY_PVECTOR is not None:
    SEQ_KINDS[_PY_PVECTOR] = b"v"
MAP_KINDS: dict[type, bytes] = {type(pmap()): b"m"}
_PMAP_TYPE: Any = type(pmap())


def layout_header(value: Any) -> bytes | None:
    """The header of ``value``'s structured layout (None: kept whole)."""
    kind = type(value)
    code = SEQ_KINDS.get(kind)
    if code is not None:
        return _SEQ + code
    code = MAP_KINDS.get(kind)
    if code is not None and isinstance(pmap_buckets(value), PVector):
        return _MAP + code
    return None


def is_header(payload: bytes) -> bool:
    """Whether a data-hash payload is a structured layout's header."""
    return len(payload) == 2 and payload[:1] in (_SEQ, _MAP)


def build_value(key: str, header: bytes, items: list[Any]) -> Any:
    """The stored value a structured layout holds (``items`` as
    ``decode_items`` gave them)."""
    code = header[1:]
    try:
        if code == b"l":
            return freeze(items, key)
        if code in (b"v", b"c"):
            # Frozen as a list first (many rows at C speed), then the vector
            # of the frozen items: its stored form, nothing left to visit.
            frozen = list(freeze(items, key))
            if code == b"v" and _python_pvector is not None:
                return _python_pvector(frozen)
            return freeze(pvector(frozen), key)
        if code == b"m":
            it = iter(items)
            return freeze(pmap(dict(zip(it, it, strict=True))), key)
    except ServerStateError:
        raise
    except Exception as e:  # an unhashable key, an odd number of entries...
        raise ServerStatePayloadError(
            key, f"server_state[{key!r}]: the stored value cannot be decoded: the data is corrupt ({e!r})."
        ) from None
    raise ServerStatePayloadError(
        key, f"server_state[{key!r}]: the stored value has an unknown layout {header!r} (a newer version?)."
    )


def origin_text(origin: Origin, who: str) -> str:
    """A commit's origin and writer as the log carries them (a Redis
    stream entry, a SQLite log row): the writer
    alone (never starting with ``[``) for a plain write, else JSON."""
    if origin is LOCAL or (
        not origin.round and not origin.chain and not origin.no_rerun and not origin.expired
    ):
        return who if not who.startswith("[") else json.dumps([0, [], False, who])
    if origin.expired:
        return json.dumps([origin.round, sorted(origin.chain), origin.no_rerun, who, True])
    return json.dumps([origin.round, sorted(origin.chain), origin.no_rerun, who])


def origin_of(text: bytes) -> tuple[Origin, str]:
    if not text.startswith(b"["):
        return LOCAL, text.decode(errors="replace")
    try:
        round_, chain_, no_rerun, *rest = json.loads(text)
        expired = len(rest) > 1 and rest[1] is True
        origin = Origin(int(round_), frozenset(map(str, chain_)), bool(no_rerun), expired)
        return origin, str(rest[0]) if rest else ""
    except (ValueError, TypeError):
        return LOCAL, ""
