"""The SQLite file: where it is, how it is opened, its schema and what its
errors mean.

A state file is marked as ours by ``PRAGMA application_id`` (``APP_ID``) and
versioned by ``PRAGMA user_version`` (``SCHEMA``). Opening a file:

- a new or empty file gets the schema, in one transaction;
- a file of ours at an older schema is migrated (``MIGRATIONS``: one step per
  version, each in one transaction, so a crash leaves the old or the new);
- a file of a newer schema (a newer server_state wrote it), a database of
  another program, or a file that is not a SQLite database is refused with an
  error naming the path and what to do, before anything is set on it (not
  even WAL mode: ``refuse_foreign``).

Tables (schema 1):

- ``meta(name, value)``: ``checkpoint`` (the commit the tables ``kv`` and
  ``items`` are at), ``floor`` (the version of every absent key without a
  tombstone), ``lease`` (the last fencing token given), ``created``;
- ``log(seq, time, origin, body)``: one row per commit, in order: who made it
  and what it wrote (``_log``); the state now is the checkpoint's with the
  rows after it replayed. Trimmed to the last ``LOG_KEPT`` commits;
- ``kv(key, version, value, n)``: at the checkpoint, one row per key ever
  set. ``value`` is the codec's bytes; NULL for a deleted key (a tombstone:
  its version lives on, so that versions only grow across deletes). ``n`` is
  NULL, or the length of a sequence or map kept item by item: then ``value``
  is its layout header (``backends._layout``) and its items are rows of
  ``items`` (a sequence's) or ``entries`` (a map's);
- ``items(key, i, item)``, ``entries(key, field, value)``: those items;
- ``leases(key, token, owner, expires)``: ``server_state_lock`` across
  processes.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

from ..._errors import ServerStateConnectionError, ServerStateError

__all__ = [
    "APP_ID",
    "SCHEMA",
    "Settings",
    "connect",
    "explain",
    "prepare",
]

APP_ID = 0x53537374  # "SSst"
SCHEMA = 1
SYNCHRONOUS = ("normal", "full")

_SCHEMA_1 = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE kv (key TEXT PRIMARY KEY, version INTEGER NOT NULL, value BLOB, n INTEGER);
CREATE INDEX kv_gone ON kv (version) WHERE value IS NULL;
CREATE TABLE items (key TEXT NOT NULL, i INTEGER NOT NULL, item BLOB NOT NULL, PRIMARY KEY (key, i))
    WITHOUT ROWID;
CREATE TABLE entries (key TEXT NOT NULL, field BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (key, field));
CREATE TABLE log (seq INTEGER PRIMARY KEY, time REAL NOT NULL, origin TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE leases (key TEXT PRIMARY KEY, token INTEGER NOT NULL, owner TEXT NOT NULL, expires REAL NOT NULL);
INSERT INTO meta VALUES ('floor', 0), ('lease', 0), ('checkpoint', 0);
"""

# Schema n -> n + 1, each run in the transaction that sets user_version.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


class Settings:
    """What a ``sqlite:///`` URL says."""

    def __init__(self, url: str) -> None:
        rest = url[len("sqlite://") :]
        path, _, query = rest.partition("?")
        if not url.startswith("sqlite://") or not path.startswith("/") or path in ("/", "/:memory:"):
            raise ServerStateError(
                f"SERVER_STATE_URL={url}: a SQLite URL names a file: sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (for a state in this process only, use memory://)."
            )
        # Relative to the directory the process runs in, named in full in errors.
        self.path = Path(path[1:]).absolute()
        options = dict(parse_qsl(query, keep_blank_values=True))
        self.synchronous = options.pop("synchronous", "normal").lower()
        if self.synchronous not in SYNCHRONOUS:
            raise ServerStateError(
                f"SERVER_STATE_URL={url}: synchronous={self.synchronous!r}; use normal (the default: a "
                "commit that returned survives a crash of the process) or full (and a power loss)."
            )
        try:
            self.timeout = float(options.pop("timeout", "5"))
            self.poll = float(options.pop("poll", "0.01"))
        except ValueError:
            raise ServerStateError(
                f"SERVER_STATE_URL={url}: timeout and poll are numbers of seconds."
            ) from None
        if not 0 < self.timeout < math.inf or not 0.001 <= self.poll <= 10:
            raise ServerStateError(
                f"SERVER_STATE_URL={url}: timeout must be > 0 (and finite) and poll between 0.001 and 10 "
                "seconds."
            )
        if options:
            raise ServerStateError(
                f"SERVER_STATE_URL={url}: unknown option {', '.join(sorted(options))} "
                "(a SQLite URL takes synchronous, timeout and poll)."
            )


def connect(settings: Settings) -> sqlite3.Connection:
    """A connection to the state file (created when missing), in WAL mode,
    in autocommit (transactions are begun explicitly)."""
    path = settings.path
    if not path.parent.is_dir():
        raise ServerStateError(
            f"server_state: the directory of the state file {path} does not exist "
            f"(SERVER_STATE_URL=sqlite:///...); create {path.parent} first."
        )
    try:
        conn = sqlite3.connect(path, timeout=settings.timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise explain(exc, path, "open") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(settings.timeout * 1000)}")
        # Another program's file (or a newer schema's) is refused before
        # anything is set on it: switching it to WAL would change its header.
        # Its marks and tables are read in one transaction: another process
        # creating the schema meanwhile is seen whole or not at all.
        conn.execute("BEGIN")
        try:
            refuse_foreign(conn, path, *_marks(conn))
        finally:
            conn.execute("COMMIT")
        mode = _into_wal(conn, settings.timeout)
        if str(mode).lower() != "wal":
            raise ServerStateError(
                f"server_state: the state file {path} cannot use SQLite's WAL mode (it is in {mode} "
                "mode): it must be on a local disk that supports shared memory, not a network share."
            )
        conn.execute(f"PRAGMA synchronous = {settings.synchronous.upper()}")
    except sqlite3.Error as exc:
        conn.close()
        raise explain(exc, path, "open") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _into_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """The file's journal mode, switched to WAL (once per file: the mode
    stays). The switch needs the file alone, and SQLite answers "locked" at
    once, without its busy wait, while another connection opens it at the
    same moment: tried again until ``timeout``."""
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    if mode.lower() == "wal":
        return mode
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            name = getattr(exc, "sqlite_errorname", "")
            if not name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)  # (no event to wait on: another process's lock)
        pause = min(pause * 2, 0.05)


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check the file is a state file of a schema this code reads; create
    or migrate it."""
    try:
        app, version = _marks(conn)
        if app == APP_ID and version == SCHEMA:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            app, version = _marks(conn)  # again, now alone: another process may have done it
            refuse_foreign(conn, path, app, version)
            if app == 0 and version == 0:
                # (executescript would commit first: statement by statement, in this transaction)
                for statement in _SCHEMA_1.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO meta VALUES ('created', ?)", (time.time(),))
                conn.execute(f"PRAGMA application_id = {APP_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA}")
            else:
                while version < SCHEMA:
                    MIGRATIONS[version](conn)
                    version += 1
                    conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise explain(exc, path, "open") from exc


def refuse_foreign(conn: sqlite3.Connection, path: Path, app: int, version: int) -> None:
    """Raise unless the file at ``path`` (marked ``app``, ``version``) is a
    state file this code reads, or a new one (no mark, no tables)."""
    if app == 0 and version == 0:
        if conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]:
            raise ServerStateError(
                f"server_state: {path} is a SQLite database of another program (it has tables and "
                "no server_state mark); point SERVER_STATE_URL at a new file."
            )
    elif app != APP_ID:
        raise ServerStateError(
            f"server_state: {path} is a SQLite database of another program (application_id "
            f"{app:#x}); point SERVER_STATE_URL at a new file."
        )
    elif version > SCHEMA:
        raise ServerStateError(
            f"server_state: {path} was written by a newer server_state (schema {version}; this one "
            f"reads up to {SCHEMA}): upgrade server_state in this process, or move the state with "
            "`python -m server_state dump` from the newer version."
        )


def _marks(conn: sqlite3.Connection) -> tuple[int, int]:
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return int(app), int(version)


def explain(exc: sqlite3.Error, path: Path, doing: str, key: str | None = None) -> ServerStateError:
    """The error a user sees for ``exc``: what happened to the file at
    ``path`` and what to do. ``doing``: open, write, read."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    what = f"server_state could not {doing} {'' if key is None else repr(key) + ' in '}the state file {path}"
    nothing = " Nothing was written; reads still show the last state." if doing == "write" else ""
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return ServerStateConnectionError(
            key,
            f"{what}: another process kept the database locked past the busy timeout ({exc}).{nothing} "
            "A program holding a long write transaction on the file (a database browser?) must end it; "
            "a longer wait is ?timeout=SECONDS in SERVER_STATE_URL.",
        )
    if name.startswith("SQLITE_FULL"):
        return ServerStateConnectionError(key, f"{what}: the disk is full ({exc}).{nothing} Free some space.")
    if name.startswith("SQLITE_READONLY"):
        return ServerStateConnectionError(
            key,
            f"{what}: the file is read-only ({exc}).{nothing} server_state needs to write the file and "
            f"its directory (for {path.name}-wal and {path.name}-shm).",
        )
    if name.startswith("SQLITE_CANTOPEN") or name.startswith("SQLITE_PERM") or name.startswith("SQLITE_AUTH"):
        return ServerStateConnectionError(
            key,
            f"{what}: it cannot be opened ({exc}); check that the path is right and that this user may "
            f"read and write {path} and its directory.",
        )
    if name.startswith("SQLITE_NOTADB") or name.startswith("SQLITE_CORRUPT"):
        return ServerStateError(
            f"{what}: it is not a SQLite database, or it is corrupt ({exc}).{nothing} Restore it from a "
            "backup (`python -m server_state load`), or point SERVER_STATE_URL at a new file."
        )
    return ServerStateConnectionError(key, f"{what} ({exc}).{nothing}")
