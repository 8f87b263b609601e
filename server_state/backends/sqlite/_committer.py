"""The SQLite committer: a state that survives restarts, shared by the
processes of one host that open the same file.

Each process keeps a mirror of the state (``server_state._mirror``), read
exactly as the memory backend reads it (no SQL on a read). A commit is one
``BEGIN IMMEDIATE`` transaction (the file's one writer at a time) that
inserts one log row (``_log``: what it wrote, by whom), if and only if

1. the file is still at the mirror's last commit: the insert checks it in
   the same statement; when another process committed since, the mirror
   takes its rows first and the commit is checked again;
2. the commit holds against the mirror: the expected versions, or no
   conflicting commit since; the lease tokens of the keys this thread holds
   locked are still its own (fencing); for ``update``/``transact``, no other
   holder has a key's lock (the same statement checks it).

Then ``COMMIT``, and only then the mirror applies the commit. A failed
transaction rolls back whole (a crash too: SQLite's WAL); a commit that
returned is in the file.

The tables ``kv`` and ``items`` hold the state at a checkpoint some way
behind (``CHECKPOINT_LAG`` commits); every ``CHECKPOINT_EVERY`` commits, one
commit also moves it forward, writing the net effect of the rows since
(``_log.Collapse``). So a commit writes one row whatever the size of its
values (an append to a long sequence writes its new items), and a start reads
the tables and replays the rows after the checkpoint, which also bring the
history back.

Versions. The mirror numbers its commits as the file does: a key's version
is the sequence of the row that last changed it, in every process and across
restarts.

Other processes' commits reach the mirror through the follower thread: it
checks ``PRAGMA data_version`` every ``poll`` seconds (a read of the WAL
index in shared memory, no I/O) and, when another connection committed,
applies the new rows in order and announces them as local commits are. A
process that fell behind the trimmed log (``LOG_KEPT``) reads the state again.

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
from itertools import chain
from typing import TYPE_CHECKING, Any

from ..._base import LOCAL, Change, Origin
from ..._errors import ServerStateError, ServerStateLeaseError
from ..._values import tokens_of
from .._codec import decode_items, encode_items, make_codec, map_items
from .._layout import LAYOUT_MIN, MAP_KINDS, SEQ_KINDS, build_value, layout_header, origin_of, origin_text
from .._patches import map_patch, seq_patch
from .._seam import Announce, commit_one_by_commit
from ._leases import LeasedLock, Leases
from ._log import Collapse, Replay, pack, pack_body, patched, read_body
from ._schema import Settings, connect, explain, prepare

if TYPE_CHECKING:
    from ..._mirror import Mirror

__all__ = ["LOG_KEPT", "SqliteCommitter"]

_LOG = logging.getLogger("server_state")

LOG_KEPT = 10_000  # commits the log keeps (a process further behind reloads the state)
CHECKPOINT_EVERY = 1024  # commits between two checkpoints (and trims of the log)
CHECKPOINT_LAG = 1000  # commits a checkpoint stays behind the last one: the history a restart brings back
TOMBSTONES_KEPT = 4096  # deleted keys whose exact version the file keeps (older: ``floor``)

Announcements = list[tuple[tuple[Change, ...], Origin]]


_time = time.time
_STRUCTURED = frozenset({*SEQ_KINDS, *MAP_KINDS})  # kept item by item from LAYOUT_MIN items
# A commit's row, inserted only if the file is still at the mirror's last commit
# (and, _FREE, no other holder has the lock of the key written).
_INSERT = "INSERT INTO log SELECT ?, ?, ?, ? WHERE coalesce((SELECT max(seq) FROM log), 0) = ?"
_INSERT_FREE = _INSERT + " AND NOT EXISTS (SELECT 1 FROM leases WHERE key = ? AND expires > ?)"


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
        self._prefix = f"{self.replica} · "  # before the writer, in the history of every process
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
            with self.sync:
                last = self._last_seq(self.conn)
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
        """The hot path: one key kept whole, no key lock held by this thread,
        no transaction running alone here. The commit is one statement, a
        transaction of its own (SQLite's autocommit): the insert of its row,
        checked in that statement (the file still at the mirror's last commit,
        no other holder of the key's lock)."""
        mirror = self.mirror
        if (
            not self._started
            or key in self.layout
            or mirror.exclusive is not None
            or (self.leases.any_held and self.leases.held())
            or (type(value) in _STRUCTURED and len(value) >= LAYOUT_MIN)
        ):
            return self._commit_one(key, expected, value, token, who, respect)
        body = pack([["s", key, self.codec.encode(key, value)]])  # (pack_body of one value)
        writer = self._prefix + who
        origin = origin_text(self._origin(), writer)
        conn = self.conn
        announce: Announcements = []
        try:
            with self.sync:
                while True:
                    if mirror.entry(key)[1] != expected:  # (only this lock moves the mirror)
                        return None
                    seq = self.dseq + 1
                    if seq % CHECKPOINT_EVERY == 0:
                        break  # this commit moves the checkpoint too: a transaction of several statements
                    now = _time()
                    try:
                        if respect:
                            done = conn.execute(
                                _INSERT_FREE, (seq, now, origin, body, seq - 1, key, now)
                            ).rowcount
                        else:
                            done = conn.execute(_INSERT, (seq, now, origin, body, seq - 1)).rowcount
                        if done != 1:
                            moved = self._last_seq(conn) != self.dseq
                    except sqlite3.Error as exc:
                        raise explain(exc, self.settings.path, "write", key) from exc
                    if done == 1:
                        change = mirror.apply_one(key, expected, value, token, writer)
                        self.dseq = seq
                        return change
                    if not moved:
                        break  # another holder has the key's lock: wait for it below
                    announce += self.catch_up_locked()
        finally:
            self.announce_all(announce)
        return self._commit_one(key, expected, value, token, who, respect)

    def _commit_one(
        self, key: str, expected: int, value: Any, token: Any, who: str, respect: bool
    ) -> Change | None:
        return commit_one_by_commit(self, key, expected, value, token, who, respect)

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
        who = self._prefix + who
        me = threading.get_ident()
        keys = [*writes, *deletes]
        path = self.settings.path
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
                    conn = self.conn
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                        try:
                            seq = self._attempt(
                                expected,
                                since,
                                conflicts,
                                ops,
                                bases,
                                deletes,
                                keys,
                                respect,
                                who,
                                me,
                                announce,
                            )
                            conn.execute("COMMIT")
                        except BaseException:
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                            raise
                    except sqlite3.Error as exc:
                        raise explain(exc, path, "write", first) from exc
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

    def _attempt(
        self,
        expected: dict[str, int] | None,
        since: int,
        conflicts: AbstractSet[str] | None,
        ops: dict[str, tuple[Any, ...]],
        bases: dict[str, Any],
        deletes: tuple[str, ...],
        keys: list[str],
        respect: bool,
        who: str,
        me: int,
        announce: Announcements,
    ) -> int:
        """In the write transaction: check the commit against the mirror
        (caught up first when another process committed since) and write
        it; its sequence. Raises ``_Rollback`` (or ``ServerStateLeaseError``)."""
        mirror = self.mirror
        origin = origin_text(self._origin(), who)
        while True:
            with mirror.lock:
                if mirror.exclusive not in (None, me):
                    raise _Rollback("turn")
                if not mirror.still(expected, since, conflicts):
                    raise _Rollback("conflict")
                if bases:
                    latest = mirror.latest
                    if any(latest.get(k) is not entry for k, entry in bases.items()):
                        raise _Rollback("conflict")  # the mirror moved under a patch
            mine = self.leases.held()
            if mine:
                lost = self.leases.lost(mine)
                if lost is not None:
                    raise self._lease_lost(lost, keys[0] if keys else None)
            seq = self.dseq + 1
            if self._log(seq, ops, deletes, origin, keys if respect else [], mine):
                break
            # Another process committed since the mirror's sequence, or holds
            # the lock of a key written: catch up and check again, or wait.
            if self._last_seq(self.conn) != self.dseq:
                announce += self.catch_up_locked()
                continue
            raise _Rollback("busy", self.leases.holder(keys, mine))
        if seq % CHECKPOINT_EVERY == 0:
            self._checkpoint(seq)
        return seq

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
        """Each write as its log row carries it (``_log``), and the mirror
        entries the patches among them were made against:
        ``("s", blob)`` a value kept whole; ``("L", header, items)`` a
        sequence kept item by item, written whole; ``("A", header, old
        length, keep, items)`` its first ``keep`` items kept, ``items``
        after; ``("H", header, entries)`` a map kept entry by entry, written
        whole (key, value, key, value...); ``("P", header, old length,
        entries set, keys removed)`` its changed entries."""
        ops: dict[str, tuple[Any, ...]] = {}
        bases: dict[str, Any] = {}
        codec = self.codec
        latest = self.mirror.latest
        for key, value in writes.items():
            header = layout_header(value) if self.patches else None
            if header is None or len(value) < LAYOUT_MIN:
                ops[key] = ("s", codec.encode(key, value))
                continue
            seq = header[:1] == b"L"
            if self.layout.get(key) == header:
                entry = latest.get(key)
                # (The very object again is a touch: something inside it
                # changed in place, which identity cannot see.)
                if entry is not None and entry[0] is not value:
                    if seq:
                        found = seq_patch(entry[0], value)
                        if found is not None:
                            keep, tail = found
                            ops[key] = ("A", header, len(entry[0]), keep, encode_items(key, value, tail))
                            bases[key] = entry
                            continue
                    else:
                        changed = map_patch(entry[0], value)
                        if changed is not None:
                            sets, dels = changed
                            ops[key] = (
                                "P",
                                header,
                                len(entry[0]),
                                encode_items(key, value, chain.from_iterable(sets)),
                                encode_items(key, value, dels),
                            )
                            bases[key] = entry
                            continue
            if seq:
                ops[key] = ("L", header, encode_items(key, value, value))
            else:
                ops[key] = ("H", header, encode_items(key, value, map_items(value)))
        return ops, bases

    def _log(
        self,
        seq: int,
        ops: dict[str, tuple[Any, ...]],
        deletes: tuple[str, ...],
        origin: str,
        respected: list[str],
        mine: dict[str, int],
    ) -> bool:
        """In the write transaction: commit ``seq``'s log row, if the file
        is still at the mirror's sequence and no other holder has the lock
        of a key of ``respected`` (one statement checks both); False if not."""
        if respected:
            cursor = self.conn.execute(
                "INSERT INTO log SELECT ?, ?, ?, ? WHERE coalesce((SELECT max(seq) FROM log), 0) = ? "
                f"AND NOT EXISTS (SELECT 1 FROM leases WHERE key IN ({', '.join('?' * len(respected))}) "
                f"AND expires > ? AND token NOT IN ({', '.join('?' * len(mine))}))",
                (
                    seq,
                    time.time(),
                    origin,
                    pack_body(ops, deletes),
                    self.dseq,
                    *respected,
                    time.time(),
                    *mine.values(),
                ),
            )
        else:
            cursor = self.conn.execute(
                "INSERT INTO log SELECT ?, ?, ?, ? WHERE coalesce((SELECT max(seq) FROM log), 0) = ?",
                (seq, time.time(), origin, pack_body(ops, deletes), self.dseq),
            )
        return bool(cursor.rowcount == 1)

    def _checkpoint(self, seq: int) -> None:
        """In the write transaction of commit ``seq``, every ``CHECKPOINT_EVERY``
        commits: the tables brought forward to ``CHECKPOINT_LAG`` commits
        before it (the rows after the checkpoint are what a restart reads
        back as history); the log trimmed to ``log_kept`` commits; the oldest
        tombstones past ``TOMBSTONES_KEPT`` dropped (their versions raise
        ``floor``)."""
        conn = self.conn
        (done,) = conn.execute("SELECT value FROM meta WHERE name = 'checkpoint'").fetchone()
        upto = seq - CHECKPOINT_LAG
        if upto - done < CHECKPOINT_EVERY:
            return
        collapse = Collapse()
        for row_seq, body in conn.execute(
            "SELECT seq, body FROM log WHERE seq > ? AND seq <= ? ORDER BY seq", (done, upto)
        ):
            collapse.add(row_seq, body)
        collapse.write(conn)
        conn.execute("UPDATE meta SET value = ? WHERE name = 'checkpoint'", (upto,))
        conn.execute("DELETE FROM log WHERE seq <= ?", (min(upto, seq - self.log_kept),))
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
        codec = self.codec
        for seq, origin_s, body in rows:
            writes: dict[str, Any] = {}
            deletes: list[str] = []
            ops: dict[str, tuple[Any, ...]] = {}
            unreadable: list[str] = []
            patches: list[tuple[str, str, int, list[Any]]] = []
            for op in read_body(body):
                kind, key = op[0], op[1]
                try:
                    if kind == "d":
                        deletes.append(key)
                        continue
                    if kind == "s":
                        writes[key], ops[key] = codec.decode(key, op[2]), ("s",)
                    elif kind in ("L", "H"):
                        writes[key] = build_value(key, op[2], decode_items(key, b"".join(op[3])))
                        ops[key] = (kind, op[2])
                    else:  # "A", "P": applied to the mirror's value below
                        patches.append((key, kind, op[3], op[4:]))
                        writes[key], ops[key] = None, (kind, op[2])
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
                for key, kind, length, parts in patches:
                    entry = latest.get(key)
                    if entry is None or self.layout.get(key) != ops[key][1] or len(entry[0]) != length:
                        break
                    try:
                        writes[key] = patched(key, kind, entry[0], parts)
                    except ServerStateError:
                        _LOG.exception(
                            "server_state: a change of %r in %s cannot be applied", key, self.settings.path
                        )
                        break
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
        transaction (the checkpoint's tables and the log rows after it);
        the keys whose version moved change in the mirror. The first load
        also brings back the history the log holds."""
        first = self.reloads == 0
        mirror = self.mirror
        history = mirror.history
        replay = Replay(
            self.codec, self.settings.path, dict(mirror.latest), record=first and history.limit > 0
        )
        conn = self.conn
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            items: dict[str, list[bytes]] = {}
            for key, item in conn.execute("SELECT key, item FROM items ORDER BY key, i"):
                items.setdefault(key, []).append(item)
            for key, field, value in conn.execute("SELECT key, field, value FROM entries"):
                items.setdefault(key, []).extend((field, value))
            replay.checkpoint(
                conn.execute("SELECT key, version, value, n FROM kv ORDER BY rowid"),
                items,
                int(meta["checkpoint"]),
            )
            for row in conn.execute(
                "SELECT seq, time, origin, body FROM log WHERE seq > ? ORDER BY seq", (replay.seq,)
            ):
                replay.row(*row)
        finally:
            if own:
                conn.execute("COMMIT")
        gone = dict(sorted(replay.gone.items(), key=lambda kv: kv[1]))
        seq = max(replay.seq, mirror.seq)
        values = replay.values
        with mirror.lock:
            changes = mirror.reset(
                values,
                gone,
                int(meta["floor"]),
                seq,
                tokens_of({k: v for k, (v, _) in values.items()}),
                "" if first else f"reload from {self.settings.path}",
            )
            self.layout, self.dseq = replay.layout, seq
            if replay.records:
                history.restore(replay.records)
        self.reloads += 1
        if first:
            return []
        return [(changes, LOCAL)] if changes else []

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
