"""How commits look in Redis: the commit script's arguments for a patch,
and the stream entry's format. The layouts of big values and the origin
text are shared with the SQLite backend (``backends._layout``).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from .._codec import encode_items
from .._layout import LAYOUT_MIN, build_value, is_header, layout_header, origin_of, origin_text
from .._patches import map_patch, seq_patch

__all__ = [
    "LAYOUT_MIN",
    "build_value",
    "is_header",
    "layout_header",
    "origin_of",
    "origin_text",
    "pairs",
    "parse_body",
    "patch_op",
    "raw_entries",
]


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


def raw_entries(reply: Any) -> list[tuple[bytes, list[bytes]]]:
    """The entries of a raw XREAD reply (RESP2: a list of [stream, entries];
    RESP3: a map of stream -> entries), each ``(id, [field, value, ...])``."""
    streams = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
    return [(i, flat) for entries in streams for i, flat in entries]


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
