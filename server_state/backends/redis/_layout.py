"""How values and commits look in Redis: the layout of big values, the
commit script's arguments for a patch, and the stream entry's format.

A FrozenList or pvector of ``LAYOUT_MIN`` items or more is kept in Redis as
a list of items (each one msgpack object, tagged as the codec tags values), a
pmap as a hash of entries (msgpack key -> msgpack value); the key's payload
in the data hash is then a two-byte header: ``L`` or ``H``, then the kind of
container (``SEQ_KINDS``/``MAP_KINDS``). A change of such a value travels as
a patch (``backends._patches``) when that is smaller than the value.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any

from pyrsistent import PVector, pmap, pvector

from ..._base import LOCAL, Origin
from ..._errors import ServerStateError, ServerStatePayloadError
from ..._pcompat import C_PVECTOR as _C_PVECTOR
from ..._pcompat import PY_PVECTOR as _PY_PVECTOR
from ..._pcompat import pmap_buckets
from ..._pcompat import python_pvector as _python_pvector
from ..._values import FrozenList, freeze
from .._codec import encode_items
from .._patches import map_patch, seq_patch

__all__ = [
    "LAYOUT_MIN",
    "build_value",
    "entries",
    "is_header",
    "layout_header",
    "origin_of",
    "origin_text",
    "pairs",
    "parse_body",
    "patch_op",
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
            key, f"server_state[{key!r}]: the value in Redis cannot be decoded: the data is corrupt ({e!r})."
        ) from None
    raise ServerStatePayloadError(
        key, f"server_state[{key!r}]: the value in Redis has an unknown layout {header!r} (a newer version?)."
    )


def patch_op(key: str, header: bytes, old: Any, new: Any) -> list[Any] | None:
    """The commit script's arguments sending ``new`` as a patch of ``old``
    (the value Redis holds in the layout ``header``), or None when the patch
    would not be smaller or cannot be proved by identity."""
    if header[:1] == b"L":
        seq = seq_patch(old, new)
        if seq is None:
            return None
        keep, tail = seq
        items = encode_items(key, new, tail)
        return ["A", header, len(old), keep, len(items), *items]
    found = map_patch(old, new)
    if found is None:
        return None
    sets, dels = found
    items = encode_items(key, new, chain.from_iterable(sets))
    fields = encode_items(key, new, dels)
    return ["P", header, len(old), len(items), *items, len(fields), *fields]


# -- the stream entry --------------------------------------------------------------------------


def origin_text(origin: Origin, who: str) -> str:
    """A commit's origin and writer as the stream carries them: the writer
    alone (never starting with ``[``) for a plain write, else JSON."""
    if origin is LOCAL or (not origin.round and not origin.chain and not origin.no_rerun):
        return who if not who.startswith("[") else json.dumps([0, [], False, who])
    return json.dumps([origin.round, sorted(origin.chain), origin.no_rerun, who])


def origin_of(text: bytes) -> tuple[Origin, str]:
    if not text.startswith(b"["):
        return LOCAL, text.decode(errors="replace")
    try:
        round_, chain_, no_rerun, *who = json.loads(text)
        return Origin(int(round_), frozenset(map(str, chain_)), bool(no_rerun)), str(who[0]) if who else ""
    except (ValueError, TypeError):
        return LOCAL, ""


def entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The entries of a raw XREAD reply (RESP2: a list of [stream, entries];
    RESP3: a map of stream -> entries), each entry [id, [field, value, ...]]."""
    streams = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
    return [(i, dict(zip(flat[::2], flat[1::2], strict=True))) for entries in streams for i, flat in entries]


def pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def parse_body(body: bytes) -> tuple[list[tuple[str, str, bytes, list[bytes]]], list[str]]:
    """A stream entry's writes ``(kind, key, payload or header, parts)`` and
    deletes: a kind byte, then its parts, each ``<length in bytes>:<bytes>``
    (see ``_scripts.COMMIT``)."""
    writes: list[tuple[str, str, bytes, list[bytes]]] = []
    deletes: list[str] = []
    i, end = 0, len(body)
    while i < end:
        kind = chr(body[i])
        n = _PARTS.get(kind)
        if n is None:
            raise ValueError(f"a stream entry of an unknown kind {kind!r} (written by a newer version?)")
        parts: list[bytes] = []
        i += 1
        for _ in range(n):
            colon = body.index(b":", i)
            start = colon + 1
            i = start + int(body[i:colon])
            parts.append(body[start:i])
        if kind == "d":
            deletes.append(parts[0].decode())
        else:
            writes.append((kind, parts[0].decode(), parts[1], parts[2:]))
    return writes, deletes


# Parts of each kind of write in a stream entry's body (see _scripts.COMMIT).
_PARTS = {"s": 2, "d": 1, "L": 3, "H": 3, "A": 4, "P": 5}
