"""The log and the checkpoint: what a commit's row carries, how a state is
read back from the file, and how the tables are brought forward.

A commit is one row of ``log``; the tables ``kv`` and ``items`` hold the
state after commit ``checkpoint`` (``meta``), some way behind the last
commit. The state now is the checkpoint's with the rows after it replayed
(``Replay``); every so often a commit also moves the checkpoint forward,
writing the net effect of a batch of rows into the tables (``Collapse``), so
that a commit itself writes one row: its cost does not grow with the size of
the value, and a hot key written a thousand times is written to ``kv`` once.

A row's ``body`` is a msgpack list of operations, one per key:

- ``["s", key, blob]``: the value, whole (the codec's bytes);
- ``["d", key]``: deleted;
- ``["L", key, header, [item, ...]]``: a sequence kept item by item
  (``backends._layout``), written whole: each item the codec's bytes;
- ``["A", key, header, length, keep, [item, ...]]``: such a sequence, of
  ``length`` items before, keeping its first ``keep`` and then these items
  (an append: ``keep == length``);
- ``["H", key, header, [key, value, ...]]``: a map kept entry by entry,
  written whole;
- ``["P", key, header, length, [key, value, ...], [key, ...]]``: such a map,
  of ``length`` entries before, with these entries set and these removed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]

from ..._base import MISSING, Change
from ..._errors import ServerStateError, ServerStatePayloadError
from ..._history import Record
from .._codec import Codec, decode_items
from .._layout import build_value, origin_of
from .._patches import apply_map_patch, apply_seq_patch

__all__ = ["Collapse", "Replay", "pack", "pack_body", "patched", "read_body"]

_LOG = logging.getLogger("server_state")
pack = msgpack.Packer(use_bin_type=True).pack


def pack_body(ops: dict[str, tuple[Any, ...]], deletes: Iterable[str]) -> bytes:
    """A commit's row body: ``ops`` as the committer encoded them (``("s",
    blob)``, ``("L", header, items)``, ``("A", header, length, keep,
    items)``) and the keys deleted."""
    body: bytes = pack(
        [*([op[0], key, *op[1:]] for key, op in ops.items()), *(["d", key] for key in deletes)]
    )
    return body


def read_body(body: bytes) -> list[list[Any]]:
    try:
        ops = msgpack.unpackb(body, raw=False)
    except Exception as e:
        raise ServerStatePayloadError(None, f"server_state: a log row cannot be read ({e!r})") from None
    if not isinstance(ops, list):
        raise ServerStatePayloadError(None, "server_state: a log row cannot be read (not a list)")
    return ops


def patched(key: str, kind: str, base: Any, parts: list[Any]) -> Any:
    """``base`` with an ``A`` or ``P`` row's change (``parts``: what follows
    the length) applied."""
    if kind == "A":
        return apply_seq_patch(key, base, parts[0], decode_items(key, b"".join(parts[1])))
    if kind == "P":
        return apply_map_patch(
            key, base, decode_items(key, b"".join(parts[0])), decode_items(key, b"".join(parts[1]))
        )
    raise ServerStatePayloadError(
        key, f"server_state[{key!r}]: a log row of an unknown kind {kind!r} (a newer version?)"
    )


class Replay:
    """A state read back: the checkpoint's rows decoded, then the log rows
    after it applied in order. ``reuse``: the mirror's entries, kept as they
    are when their version is the file's (nothing decoded again);
    ``record``: keep a history ``Record`` of each row replayed."""

    def __init__(
        self, codec: Codec, path: Path, reuse: dict[str, tuple[Any, int]], record: bool = False
    ) -> None:
        self.codec, self.path, self.reuse, self.record = codec, path, reuse, record
        self.values: dict[str, tuple[Any, int]] = {}
        self.gone: dict[str, int] = {}
        self.layout: dict[str, bytes] = {}
        self.records: list[Record] = []
        self.seq = 0

    def _unreadable(self, key: str, version: int) -> None:
        _LOG.exception(
            "server_state: the value of %r in %s cannot be read; the key is absent here", key, self.path
        )
        self.values.pop(key, None)
        self.layout.pop(key, None)
        self.gone[key] = version

    def checkpoint(
        self, rows: Iterable[tuple[str, int, Any, Any]], items: dict[str, list[bytes]], seq: int
    ) -> None:
        """The tables' rows ``(key, version, value, n)`` in first-set order,
        the items of the sequences kept item by item, the checkpoint's seq."""
        values, gone, reuse, codec = self.values, self.gone, self.reuse, self.codec
        for key, version, value, n in rows:
            if value is None:
                gone[key] = version
                continue
            if n is not None:
                self.layout[key] = value
            entry = reuse.get(key)
            if entry is not None and entry[1] == version:
                values[key] = entry
                continue
            try:
                if n is None:
                    values[key] = (codec.decode(key, value), version)
                else:
                    values[key] = (
                        build_value(key, value, decode_items(key, b"".join(items.get(key, ())))),
                        version,
                    )
            except ServerStateError:
                self._unreadable(key, version)
        self.seq = seq

    def row(self, seq: int, when: float, origin: str, body: bytes) -> None:
        """One log row after the state's."""
        values, gone, layout = self.values, self.gone, self.layout
        changes: list[Change] = []
        ops = read_body(body)
        for op in ops:
            kind, key = op[0], op[1]
            before = values.get(key)
            old = MISSING if before is None else before[0]
            if kind == "d":
                values.pop(key, None)
                layout.pop(key, None)
                gone[key] = seq
                changes.append(Change(key, old, MISSING, seq))
                continue
            entry = self.reuse.get(key)
            try:
                if entry is not None and entry[1] == seq:
                    new = entry[0]
                elif kind == "s":
                    new = self.codec.decode(key, op[2])
                elif kind in ("L", "H"):
                    new = build_value(key, op[2], decode_items(key, b"".join(op[3])))
                else:
                    if before is None or layout.get(key) != op[2] or len(before[0]) != op[3]:
                        raise ServerStatePayloadError(key, f"server_state[{key!r}]: a patch has no base")
                    new = patched(key, kind, before[0], op[4:])
            except ServerStateError:
                self._unreadable(key, seq)
                changes.append(Change(key, old, MISSING, seq))
                continue
            values[key] = (new, seq)
            gone.pop(key, None)
            if kind == "s":
                layout.pop(key, None)
            else:
                layout[key] = op[2]
            changes.append(Change(key, old, new, seq))
        self.seq = seq
        if self.record and changes:
            self.records.append(Record(seq, when, origin_of(origin.encode())[1], tuple(changes)))


class Collapse:
    """The net effect of a batch of log rows on the tables, written in one
    pass (``write``): per key, its last whole value or delete; or the items
    of its sequence from the first position any row changed; or the entries
    of its map that changed."""

    def __init__(self) -> None:
        # key -> ["s", version, blob] | ["d", version]
        #   | ["L", version, header, items] | ["A", version, header, cut, items] (items from cut on)
        #   | ["H", version, header, {field: value}] | ["P", version, header, {field: value or None}]
        self.net: dict[str, list[Any]] = {}

    def add(self, seq: int, body: bytes) -> None:
        net = self.net
        for op in read_body(body):
            kind, key = op[0], op[1]
            was = net.get(key)
            if kind == "s":
                net[key] = ["s", seq, op[2]]
            elif kind == "d":
                net[key] = ["d", seq]
            elif kind == "L":
                net[key] = ["L", seq, op[2], list(op[3])]
            elif kind == "H":
                flat = op[3]
                net[key] = ["H", seq, op[2], dict(zip(flat[::2], flat[1::2], strict=True))]
            elif kind == "A":
                keep, items = op[4], op[5]
                if was is None:
                    net[key] = ["A", seq, op[2], keep, list(items)]
                elif was[0] == "L":
                    net[key] = ["L", seq, op[2], was[3][:keep] + list(items)]
                elif was[0] == "A" and keep >= was[3]:
                    net[key] = ["A", seq, op[2], was[3], was[4][: keep - was[3]] + list(items)]
                elif was[0] == "A":
                    net[key] = ["A", seq, op[2], keep, list(items)]
                else:
                    raise ServerStatePayloadError(key, f"server_state[{key!r}]: a patch of another layout")
            elif kind == "P":
                flat, removed = op[4], op[5]
                if was is None:
                    was = ["P", seq, op[2], {}]
                elif was[0] not in ("H", "P"):
                    raise ServerStatePayloadError(key, f"server_state[{key!r}]: a patch of another layout")
                entries = was[3]
                for field in removed:
                    if was[0] == "H":
                        entries.pop(field, None)
                    else:
                        entries[field] = None
                entries.update(zip(flat[::2], flat[1::2], strict=True))
                net[key] = [was[0], seq, op[2], entries]
            else:
                raise ServerStatePayloadError(
                    key, f"server_state[{key!r}]: a log row of an unknown kind {kind!r} (a newer version?)"
                )

    def write(self, conn: Any) -> None:
        """The tables brought forward (in the caller's write transaction)."""
        for key, op in self.net.items():
            kind, version = op[0], op[1]
            if kind == "A":
                cut, items = op[3], op[4]
                conn.execute("DELETE FROM items WHERE key = ? AND i >= ?", (key, cut))
                conn.executemany(
                    "INSERT INTO items VALUES (?, ?, ?)",
                    ((key, cut + i, item) for i, item in enumerate(items)),
                )
                conn.execute(
                    "UPDATE kv SET version = ?, value = ?, n = ? WHERE key = ?",
                    (version, op[2], cut + len(items), key),
                )
                continue
            if kind == "P":
                for field, value in op[3].items():
                    if value is None:
                        conn.execute("DELETE FROM entries WHERE key = ? AND field = ?", (key, field))
                    else:
                        conn.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", (key, field, value))
                conn.execute(
                    "UPDATE kv SET version = ?, value = ?, n = (SELECT count(*) FROM entries WHERE key = ?) "
                    "WHERE key = ?",
                    (version, op[2], key, key),
                )
                continue
            conn.execute("DELETE FROM items WHERE key = ?", (key,))
            conn.execute("DELETE FROM entries WHERE key = ?", (key,))
            if kind == "L":
                items = op[3]
                conn.executemany(
                    "INSERT INTO items VALUES (?, ?, ?)", ((key, i, item) for i, item in enumerate(items))
                )
                value, n = op[2], len(items)
            elif kind == "H":
                conn.executemany(
                    "INSERT INTO entries VALUES (?, ?, ?)", ((key, f, v) for f, v in op[3].items())
                )
                value, n = op[2], len(op[3])
            else:
                value, n = (op[2] if kind == "s" else None), None
            conn.execute(
                "INSERT INTO kv (key, version, value, n) VALUES (?, ?, ?, ?) ON CONFLICT (key) "
                "DO UPDATE SET version = excluded.version, value = excluded.value, n = excluded.n",
                (key, version, value, n),
            )
