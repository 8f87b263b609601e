"""The SQLite committer: a state that survives restarts, shared by the
processes of one host that open the same file.

Each process keeps a mirror of the state (``server_state._mirror``), read
exactly as the memory backend reads it (no SQL on a read). A commit is one
``BEGIN IMMEDIATE`` transaction (the file's one writer at a time):

1. the mirror is brought up to the file's last commit (the log rows other
   processes wrote since), so that it is the state the transaction sees;
2. the commit is checked against the mirror (the expected versions, or no
   conflicting commit since), the lease tokens of the keys this thread holds
   locked (fencing) and, for ``update``/``transact``, that no other process
   holds a key's lock;
3. the values (the shared codec, never pickle unless configured), versions,
   and one log row (what the commit wrote, and what it replaced, for the
   history) are written; ``COMMIT``; then the mirror applies the commit.

Nothing is written unless everything is: a failed transaction rolls back
whole (a crash too: SQLite's WAL), and the mirror changes only after
``COMMIT`` returned.

Versions. The mirror numbers its commits as the file does: a key's version
is the sequence of the log row that last changed it, in every process and
across restarts (the mirror starts at the file's last commit).

Other processes' commits reach the mirror through the follower thread: it
checks ``PRAGMA data_version`` every ``poll`` seconds (a read of the WAL
index in shared memory, no I/O) and, when another connection committed,
applies the new log rows in order and announces them as local commits are.
A process that fell behind the trimmed log (``LOG_KEPT``) reloads the state.

Sequences of ``LAYOUT_MIN`` items or more are kept item by item (rows of
``items``): an append writes its new items and the log row carries the
patch, whatever the length. Other values are one blob each.

Only ``backends/sqlite/`` imports ``sqlite3``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

import msgpack  # type: ignore[import-untyped]

from ..._base import LOCAL, MISSING, Change, Origin
from ..._errors import ServerStateError, ServerStateLeaseError
from ..._history import Record
from ..._values import tokens_of
from .._codec import decode_items, encode_items, make_codec
from .._layout import LAYOUT_MIN, build_value, layout_header, origin_of, origin_text
from .._patches import apply_seq_patch, seq_patch
from .._seam import Announce
from ._leases import LeasedLock, Leases
from ._schema import Settings, connect, explain, prepare

if TYPE_CHECKING:
    from ..._mirror import Mirror

__all__ = ["LOG_KEPT", "SqliteCommitter"]

_LOG = logging.getLogger("server_state")

LOG_KEPT = 10_000  # commits the log keeps (a process further behind reloads the state)
TRIM_EVERY = 1024  # commits between two trims of the log and of old tombstones
TOMBSTONES_KEPT = 4096  # deleted keys whose exact version the file keeps (older: ``floor``)

_pack = msgpack.Packer(use_bin_type=True).pack
Announcements = list[tuple[tuple[Change, ...], Origin]]


class _Rollback(Exception):
    """Ends a write transaction without writing: ``why`` is ``conflict``
    (retry on the newer mirror), ``turn`` (another thread runs a transaction
    alone here) or ``busy`` (another holder has the lock of ``key``)."""

    def __init__(self, why: str, key: str | None = None) -> None:
        self.why, self.key = why, key


class SqliteCommitter:
    """A mirror of a state kept in a SQLite file."""

    shared = True  # other processes commit too

    def __init__(
        self,
        url: str,
        *,
        serializer: str | None = None,
        signing_key: bytes | str | None = None,
        lease_ttl: float | None = None,
        replica: str | None = None,
        log_kept: int = LOG_KEPT,
    ) -> None:
        self.url = url
        self.settings = Settings(url)  # checked now; the file is opened on first use
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_ttl = float(lease_ttl) if lease_ttl is not None else 10.0
        if self.lease_ttl <= 0.1:
            raise ServerStateError(f"server_state: lease_ttl must be more than 0.1 s, got {lease_ttl!r}.")
        self.codec = make_codec(serializer or "tagged", signing_key)
        self.patches = self.codec.name == "tagged"  # pickles stay whole
        self.log_kept = max(int(log_kept), 1)
        self.dseq = 0  # the file's sequence the mirror is at
        self.layout: dict[str, bytes] = {}  # key kept item by item -> its header
        self.reloads = 0  # times the state was read whole (the first load, a fall behind the log)
        self.sync = threading.Lock()  # the write connection, and the mirror's way forward
        self.closing = threading.Event()
        self._start_lock = threading.Lock()
        self._started = False
        self._thread: threading.Thread | None = None
        self._data_version: int | None = None
        self.leases = Leases(self, self.lease_ttl, f"{self.replica}:{id(self):x}")

    # -- the seam ---------------------------------------------------------------

    def bind(self, mirror: Mirror, announce: Announce, origin: Callable[[], Origin]) -> None:
        self.mirror = mirror
        self.announce = announce
        self._origin = origin

    @property
    def lock_factory(self) -> Callable[[str, threading.RLock], LeasedLock]:
        return lambda key, local: LeasedLock(self.leases, key, local)

    @property
    def used(self) -> bool:
        return self._started

    def position(self) -> int:
        return self.dseq

    def head(self) -> int:
        self.open()
        with self.sync:
            return self._last_seq(self.conn)

    def __repr__(self) -> str:
        return f"<SqliteCommitter {self.settings.path}>"

    def open(self) -> None:
        if not self._started:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            if self.closing.is_set():
                raise ServerStateError(f"server_state: {self!r} was closed.")
            path = self.settings.path
            conn = connect(self.settings)
            try:
                prepare(conn, path)
                follow = connect(self.settings)
            except BaseException:
                conn.close()
                raise
            self.conn, self.follow_conn = conn, follow
            try:
                try:
                    with self.sync:
                        self._reload()
                except sqlite3.Error as exc:  # a corrupt page, a file locked exclusively
                    raise explain(exc, path, "open") from exc
            except BaseException:
                conn.close()
                follow.close()
                raise
            self._thread = threading.Thread(target=self._follow, name="server_state-sqlite", daemon=True)
            self._thread.start()
            self._started = True

    def close(self) -> None:
        """Stop the follower and close the file."""
        self.closing.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.settings.poll + 5)
        if self._started:
            with self.sync:
                for conn in (self.conn, self.follow_conn):
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()

    # -- commits ---------------------------------------------------------------------

    def lagged(self, seen: int) -> bool:
        """Whether the mirror a function read (at sequence ``seen``) was behind
        the file; then it catches up first."""
        if self.mirror.seq != seen:
            return True
        try:
            last = self._last_seq(self.follow_conn)
        except sqlite3.Error:
            return False
        if last <= self.dseq:
            return False
        self.catch_up()
        return True

    def confirm(self, key: str, version: int) -> bool:
        """An equal write changes nothing only if the file agrees that the
        mirror's value is the newest (after the mirror caught up)."""
        self.open()
        self.catch_up()
        return self.mirror.entry(key)[1] == version

    def catch_up(self) -> None:
        """Bring the mirror to the file's last commit now."""
        with self.sync:
            try:
                announce = self.catch_up_locked()
            except sqlite3.Error as exc:
                raise explain(exc, self.settings.path, "read") from exc
        self.announce_all(announce)

    def commit_one(
        self, key: str, expected: int, value: Any, token: Any, who: str, respect: bool
    ) -> Change | None:
        changes = self.commit(
            {key: expected},
            {key: value},
            (),
            since=0,
            conflicts=None,
            tokens={} if token is None else {key: token},
            who=who,
            respect=respect,
        )
        return None if changes is None else changes[0]

    def commit(
        self,
        expected: dict[str, int] | None,
        writes: dict[str, Any],
        deletes: tuple[str, ...],
        *,
        since: int,
        conflicts: AbstractSet[str] | None,
        tokens: dict[str, Any],
        who: str,
        respect: bool,
    ) -> tuple[Change, ...] | None:
        self.open()
        mirror = self.mirror
        first = next(iter(writes), deletes[0] if deletes else None)
        who = f"{self.replica} · {who}"
        me = threading.get_ident()
        keys = [*writes, *deletes]
        while True:
            # Encoding first, outside every lock: a value the codec refuses
            # fails here, before anything is written.
            ops, bases = self._encode(writes)
            if mirror.exclusive not in (None, me):
                with mirror.lock:
                    mirror.wait_turn()
            announce: Announcements = []
            try:
                with self.sync:
                    with self.writing(first, "write"):
                        announce = self.catch_up_locked()
                        with mirror.lock:
                            if mirror.exclusive not in (None, me):
                                raise _Rollback("turn")
                            if not mirror.still(expected, since, conflicts):
                                raise _Rollback("conflict")
                            latest = mirror.latest
                            if any(latest.get(k) is not entry for k, entry in bases.items()):
                                raise _Rollback("conflict")  # the mirror moved under a patch
                        mine = self.leases.held()
                        if mine:
                            lost = self.leases.lost(mine)
                            if lost is not None:
                                raise self._lease_lost(lost, first)
                        if respect:
                            busy = self.leases.holder(keys, mine)
                            if busy is not None:
                                raise _Rollback("busy", busy)
                        seq = self.dseq + 1
                        self._write(seq, ops, deletes, origin_text(self._origin(), who))
                    # Committed: into the mirror, at the same sequence.
                    with mirror.lock:
                        changes = mirror.apply(writes, deletes, tokens, who)
                        self._took(ops, deletes, seq)
                    return changes
            except _Rollback as stop:
                if stop.why == "conflict":
                    return None
                if stop.why == "busy":
                    assert stop.key is not None
                    self.announce_all(announce)
                    announce = []
                    self.leases.wait_free(stop.key, list(self.leases.held()))
            finally:
                self.announce_all(announce)

    @contextlib.contextmanager
    def writing(self, key: str | None, doing: str) -> Iterator[None]:
        """One write transaction on the file (under ``sync``): rolled back
        whole unless the block ends normally; SQLite's errors explained."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise explain(exc, self.settings.path, "write" if doing == "write" else doing, key) from exc

    def _lease_lost(self, lost: str, key: str | None) -> ServerStateLeaseError:
        return ServerStateLeaseError(
            key or lost,
            f"server_state: the lock of {lost!r} held by this thread expired (or was taken over) before "
            f"the write of {key!r}: nothing was written. A `with server_state_lock[...]:` block "
            f"must not stall for longer than the lease ({self.lease_ttl:g} s, SERVER_STATE_LEASE_TTL).",
        )

    def _encode(self, writes: dict[str, Any]) -> tuple[dict[str, tuple[Any, ...]], dict[str, Any]]:
        """Each write as the log and the tables take it, and the mirror
        entries the patches among them were made against:
        ``("s", blob)`` a value kept whole; ``("L", header, items)`` a
        sequence kept item by item, written whole; ``("A", header, old
        length, keep, items)`` its first ``keep`` items kept, ``items`` after."""
        ops: dict[str, tuple[Any, ...]] = {}
        bases: dict[str, Any] = {}
        codec = self.codec
        latest = self.mirror.latest
        for key, value in writes.items():
            header = layout_header(value) if self.patches else None
            if header is None or header[:1] != b"L" or len(value) < LAYOUT_MIN:
                ops[key] = ("s", codec.encode(key, value))
                continue
            if self.layout.get(key) == header:
                entry = latest.get(key)
                # (The very object again is a touch: something inside it
                # changed in place, which identity cannot see.)
                found = seq_patch(entry[0], value) if entry is not None and entry[0] is not value else None
                if found is not None and entry is not None:
                    keep, tail = found
                    ops[key] = ("A", header, len(entry[0]), keep, encode_items(key, value, tail))
                    bases[key] = entry
                    continue
            ops[key] = ("L", header, encode_items(key, value, value))
        return ops, bases

    def _write(
        self, seq: int, ops: dict[str, tuple[Any, ...]], deletes: tuple[str, ...], origin: str
    ) -> None:
        """In the write transaction: commit ``seq``'s rows."""
        conn = self.conn
        layout = self.layout
        body = _pack([*(_op_body(key, op) for key, op in ops.items()), *(["d", key] for key in deletes)])
        now = time.time()
        if (
            len(ops) + len(deletes) == 1
            and next(iter(ops or deletes)) not in layout
            and (not ops or next(iter(ops.values()))[0] == "s")
        ):
            # One key kept whole: what it replaced is copied by SQLite itself.
            key = next(iter(ops or deletes))
            conn.execute(
                "INSERT INTO log (seq, time, origin, body, old) VALUES (?, ?, ?, ?, "
                "(SELECT value FROM kv WHERE key = ?))",
                (seq, now, origin, body, key),
            )
        else:
            conn.execute(
                "INSERT INTO log (seq, time, origin, body, undo) VALUES (?, ?, ?, ?, ?)",
                (seq, now, origin, body, _pack(self._undo(ops, deletes))),
            )
        for key, op in ops.items():
            kind = op[0]
            if kind == "s":
                if key in layout:
                    conn.execute("DELETE FROM items WHERE key = ?", (key,))
                conn.execute(
                    "INSERT INTO kv (key, version, value, n) VALUES (?, ?, ?, NULL) ON CONFLICT (key) "
                    "DO UPDATE SET version = excluded.version, value = excluded.value, n = NULL",
                    (key, seq, op[1]),
                )
            elif kind == "L":
                items = op[2]
                conn.execute("DELETE FROM items WHERE key = ?", (key,))
                conn.executemany(
                    "INSERT INTO items VALUES (?, ?, ?)", ((key, i, b) for i, b in enumerate(items))
                )
                conn.execute(
                    "INSERT INTO kv (key, version, value, n) VALUES (?, ?, ?, ?) ON CONFLICT (key) "
                    "DO UPDATE SET version = excluded.version, value = excluded.value, n = excluded.n",
                    (key, seq, op[1], len(items)),
                )
            else:  # "A"
                keep, items = op[3], op[4]
                conn.execute("DELETE FROM items WHERE key = ? AND i >= ?", (key, keep))
                conn.executemany(
                    "INSERT INTO items VALUES (?, ?, ?)", ((key, keep + i, b) for i, b in enumerate(items))
                )
                conn.execute("UPDATE kv SET version = ?, n = ? WHERE key = ?", (seq, keep + len(items), key))
        for key in deletes:
            if key in layout:
                conn.execute("DELETE FROM items WHERE key = ?", (key,))
            conn.execute("UPDATE kv SET version = ?, value = NULL, n = NULL WHERE key = ?", (seq, key))
        if seq % TRIM_EVERY == 0:
            self._trim(seq)

    def _undo(self, ops: dict[str, tuple[Any, ...]], deletes: tuple[str, ...]) -> list[list[Any]]:
        """In the write transaction, before the writes: what each key of the
        commit held, for the history a restart brings back: ``["s", key,
        blob or None]`` (absent); ``["L", key, header, items]`` a sequence
        kept item by item; ``["A", key, keep, items]`` its items from
        ``keep`` on (the rest is the new value's)."""
        conn = self.conn
        out: list[list[Any]] = []
        for key in [*ops, *deletes]:
            op = ops.get(key)
            header = self.layout.get(key)
            if header is None:
                row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
                out.append(["s", key, None if row is None else row[0]])
            elif op is not None and op[0] == "A":
                items = conn.execute(
                    "SELECT item FROM items WHERE key = ? AND i >= ? ORDER BY i", (key, op[3])
                ).fetchall()
                out.append(["A", key, op[3], b"".join(r[0] for r in items)])
            else:
                items = conn.execute("SELECT item FROM items WHERE key = ? ORDER BY i", (key,)).fetchall()
                out.append(["L", key, header, b"".join(r[0] for r in items)])
        return out

    def _trim(self, seq: int) -> None:
        """In a write transaction: drop log rows past ``log_kept`` and the
        oldest tombstones past ``TOMBSTONES_KEPT`` (their versions raise
        ``floor``)."""
        conn = self.conn
        conn.execute("DELETE FROM log WHERE seq <= ?", (seq - self.log_kept,))
        row = conn.execute(
            "SELECT version FROM kv WHERE value IS NULL ORDER BY version DESC LIMIT 1 OFFSET ?",
            (TOMBSTONES_KEPT,),
        ).fetchone()
        if row is not None:
            conn.execute("DELETE FROM kv WHERE value IS NULL AND version <= ?", (row[0],))
            conn.execute("UPDATE meta SET value = max(value, ?) WHERE name = 'floor'", (row[0],))

    def _took(self, ops: dict[str, tuple[Any, ...]], deletes: Iterable[str], seq: int) -> None:
        """Under the mirror's lock: the layouts after commit ``seq``."""
        layout = self.layout
        for key, op in ops.items():
            if op[0] == "s":
                layout.pop(key, None)
            else:
                layout[key] = op[1]
        for key in deletes:
            layout.pop(key, None)
        self.dseq = seq

    # -- following ----------------------------------------------------------------------

    @staticmethod
    def _last_seq(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT max(seq) FROM log").fetchone()[0] or 0)

    def catch_up_locked(self) -> Announcements:
        """Under ``sync``: apply the log rows other processes wrote since the
        mirror's sequence, in order (the whole state when the log no longer
        reaches back that far); what to announce, once ``sync`` is released."""
        rows = self.conn.execute(
            "SELECT seq, origin, body FROM log WHERE seq > ? ORDER BY seq", (self.dseq,)
        ).fetchall()
        if not rows:
            return []
        if rows[0][0] != self.dseq + 1:
            return self._reload()
        out: Announcements = []
        mirror = self.mirror
        for seq, origin_s, body in rows:
            writes: dict[str, Any] = {}
            deletes: list[str] = []
            ops: dict[str, tuple[Any, ...]] = {}
            unreadable: list[str] = []
            patches: list[tuple[str, int, int, list[Any]]] = []
            for op in msgpack.unpackb(body, raw=False):
                kind, key = op[0], op[1]
                try:
                    if kind == "d":
                        deletes.append(key)
                        continue
                    if kind == "s":
                        writes[key], ops[key] = self.codec.decode(key, op[2]), ("s",)
                    elif kind == "L":
                        writes[key] = build_value(key, op[2], decode_items(key, op[3]))
                        ops[key] = ("L", op[2])
                    else:  # "A": applied to the mirror's value below
                        patches.append((key, op[3], op[4], decode_items(key, op[5])))
                        writes[key], ops[key] = None, ("A", op[2])
                except ServerStateError:
                    _LOG.exception(
                        "server_state: the value of %r in %s cannot be read; the key is absent here",
                        key,
                        self.settings.path,
                    )
                    writes.pop(key, None)
                    ops.pop(key, None)
                    unreadable.append(key)
            origin, who = origin_of(origin_s.encode())
            with mirror.lock:
                latest = mirror.latest
                for key, length, keep, tail in patches:
                    entry = latest.get(key)
                    if entry is None or self.layout.get(key) != ops[key][1] or len(entry[0]) != length:
                        break
                    writes[key] = apply_seq_patch(key, entry[0], keep, tail)
                else:
                    gone = [*deletes, *unreadable]
                    changes = mirror.apply(writes, gone, tokens_of(writes), who or "another process")
                    self._took(ops, gone, seq)
                    if changes:
                        out.append((changes, origin))
                    continue
            # The mirror does not hold what a patch was made against: reload.
            return out + self._reload()
        return out

    def _reload(self) -> Announcements:
        """Under ``sync``: the whole state from the file in one read
        transaction; the keys whose version moved change in the mirror."""
        first = self.reloads == 0
        conn = self.conn
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            seq = self._last_seq(conn)
            floor = int(conn.execute("SELECT value FROM meta WHERE name = 'floor'").fetchone()[0])
            rows = conn.execute("SELECT key, version, value, n FROM kv ORDER BY rowid").fetchall()
            items: dict[str, list[bytes]] = {}
            for key, item in conn.execute("SELECT key, item FROM items ORDER BY key, i"):
                items.setdefault(key, []).append(item)
            history = self._history_rows(conn) if first else []
        finally:
            if own:
                conn.execute("COMMIT")
        mirror = self.mirror
        latest = mirror.latest
        entries: dict[str, tuple[Any, int]] = {}
        gone: dict[str, int] = {}
        layout: dict[str, bytes] = {}
        for key, version, value, n in rows:
            if value is None:
                gone[key] = version
                continue
            if n is not None:
                layout[key] = value
            entry = latest.get(key)
            if entry is not None and entry[1] == version:
                entries[key] = entry
                continue
            try:
                if n is None:
                    entries[key] = (self.codec.decode(key, value), version)
                else:
                    found = b"".join(items.get(key, ()))
                    entries[key] = (build_value(key, value, decode_items(key, found)), version)
            except ServerStateError:
                _LOG.exception(
                    "server_state: the value of %r in %s cannot be read; the key is absent here",
                    key,
                    self.settings.path,
                )
                layout.pop(key, None)
                gone[key] = version
        gone = dict(sorted(gone.items(), key=lambda kv: kv[1]))
        with mirror.lock:
            changes = mirror.reset(
                entries,
                gone,
                floor,
                max(seq, mirror.seq),
                tokens_of({k: v for k, (v, _) in entries.items()}),
                "" if first else f"reload from {self.settings.path}",
            )
            self.layout, self.dseq = layout, max(seq, mirror.seq)
        self.reloads += 1
        if first:
            self._restore_history(history, entries)
            return []
        return [(changes, LOCAL)] if changes else []

    def _history_rows(self, conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        history = self.mirror.history
        if not history.limit:
            return []
        return conn.execute(
            "SELECT seq, time, origin, body, old, undo FROM log WHERE time >= ? ORDER BY seq DESC LIMIT ?",
            (time.time() - history.max_age, history.limit),
        ).fetchall()

    def _restore_history(self, rows: list[tuple[Any, ...]], entries: dict[str, tuple[Any, int]]) -> None:
        """The history of the last commits, rebuilt from the log (newest
        first): each key's value after a commit is the one before the next
        commit that changed it, undone from the state now."""
        current = {k: v for k, (v, _) in entries.items()}
        records: list[Record] = []
        for seq, when, origin_s, body, old, undo in rows:
            try:
                keys = [op[1] for op in msgpack.unpackb(body, raw=False)]
                if undo is None:
                    befores = {keys[0]: MISSING if old is None else self.codec.decode(keys[0], old)}
                else:
                    befores = {}
                    for item in msgpack.unpackb(undo, raw=False):
                        kind, key = item[0], item[1]
                        if kind == "s":
                            befores[key] = MISSING if item[2] is None else self.codec.decode(key, item[2])
                        elif kind == "L":
                            befores[key] = build_value(key, item[2], decode_items(key, item[3]))
                        else:
                            after = current.get(key, MISSING)
                            if after is MISSING:
                                raise ServerStateError(f"no value of {key!r} to undo a patch on")
                            befores[key] = apply_seq_patch(key, after, item[2], decode_items(key, item[3]))
            except (ServerStateError, ValueError, msgpack.UnpackException):
                _LOG.warning("server_state: the history before commit %d cannot be read back", seq + 1)
                break
            changes = []
            for key in keys:
                after = current.get(key, MISSING)
                before = befores.get(key, MISSING)
                changes.append(Change(key, before, after, seq))
                if before is MISSING:
                    current.pop(key, None)
                else:
                    current[key] = before
            _, who = origin_of(origin_s.encode())
            records.append(Record(seq, when, who, tuple(changes)))
        records.reverse()
        with self.mirror.lock:
            self.mirror.history.restore(records)

    def announce_all(self, announce: Announcements) -> None:
        for changes, origin in announce:
            try:
                self.announce(changes, origin)
            except Exception:
                _LOG.exception("server_state: announcing a commit from another process failed")

    def _follow(self) -> None:
        """The follower thread: another connection committed → the new log
        rows; the leases held here renewed when due."""
        failing = False
        while not self.closing.wait(self.settings.poll):
            try:
                self.follow_once()
                self.leases.renew_due()
                failing = False
            except (sqlite3.Error, ServerStateError) as exc:
                if not failing:
                    _LOG.warning("server_state: following %s failed (%s); retrying", self.settings.path, exc)
                failing = True
            except Exception:
                _LOG.exception("server_state: the follower of %s failed", self.settings.path)

    def follow_once(self) -> None:
        """One look: when the file changed since the last look (``PRAGMA
        data_version`` of the follower's own connection) and holds commits
        the mirror lacks, catch up."""
        conn = self.follow_conn
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            if self._last_seq(conn) > self.dseq:
                self.catch_up()


def _op_body(key: str, op: tuple[Any, ...]) -> list[Any]:
    """A write as the log row's body carries it (items joined: one blob)."""
    kind = op[0]
    if kind == "s":
        return ["s", key, op[1]]
    if kind == "L":
        return ["L", key, op[1], b"".join(op[2])]
    return ["A", key, op[1], op[2], op[3], b"".join(op[4])]
