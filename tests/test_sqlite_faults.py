"""The SQLite backend under faults: a file locked by another program past
the busy timeout, a full disk, a read-only file or directory, a file that is
not a state file (random bytes, corrupt pages, another program's database, a
newer schema), a missing directory and bad URLs.

Each fault is an error that names the file and says what to do; nothing is
half-written (the versions, the log and a store opened afterwards show the
state before); reads keep serving the state already loaded; the file of a
refused open is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server_state import ServerState, ServerStateConnectionError, ServerStateError
from server_state._store import store_from_url

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
BIG = "x" * 1_000_000


@pytest.fixture
def open_state() -> Iterator[Callable[[str], ServerState]]:
    """``open_state(url)``: a ``ServerState`` on ``url``, closed after the test."""
    made: list[ServerState] = []

    def make(url: str) -> ServerState:
        state = ServerState(store_from_url(url))
        made.append(state)
        return state

    yield make
    for state in made:
        state._store.close()


def _files(directory: Path) -> dict[str, str]:
    """Each file of ``directory`` and a hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def _make_state_file(path: Path, **values: Any) -> dict[str, int]:
    """A state file holding ``values``, closed; their versions."""
    store = store_from_url(f"sqlite:///{path}")
    state = ServerState(store)
    state.update(values)
    versions = {key: state.version(key) for key in values}
    store.close()
    return versions


# -- locked --------------------------------------------------------------------------------


def test_a_file_locked_past_the_busy_timeout_fails_writes_naming_it_reads_serve_and_writes_resume(
    tmp_path: Path, open_state: Callable[[str], ServerState]
) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}?timeout=0.3"
    state = open_state(url)
    state.update(k=1, a=10, b=20)
    versions = {k: state.version(k) for k in ("k", "a", "b")}
    head = state._store.committer.head()

    holder = sqlite3.connect(path, isolation_level=None)  # another program, mid-transaction
    try:
        holder.execute("BEGIN IMMEDIATE")
        writes: list[tuple[str, Callable[[], Any]]] = [
            ("set", lambda: state.__setitem__("k", 2)),
            ("update", lambda: state.update("k", lambda v: v + 1)),
            ("transact", lambda: state.transact(lambda s: s.set("a", 11).set("b", 19))),
            ("delete", lambda: state.__delitem__("k")),
        ]
        for name, write in writes:
            began = time.monotonic()
            with pytest.raises(ServerStateConnectionError) as info:
                write()
            waited = time.monotonic() - began
            message = str(info.value)
            assert str(path) in message, (name, message)
            assert "locked" in message and "timeout" in message, (name, message)
            assert "Nothing was written" in message, (name, message)
            assert 0.25 <= waited < 3, (name, waited)  # the busy timeout, then no hang
            assert isinstance(info.value, ConnectionError)

        # Reads serve the last state, in this process and in one that starts now.
        assert (state["k"], state["a"], state["b"]) == (1, 10, 20)
        assert {k: state.version(k) for k in versions} == versions
        snap = state.snapshot("a", "b")
        assert snap["a"] + snap["b"] == 30
        late = open_state(url)
        assert (late["k"], late["a"], late["b"]) == (1, 10, 20)
        assert {k: late.version(k) for k in versions} == versions
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    # Released: every write works again, after the same commits as before.
    assert state._store.committer.head() == head
    state["k"] = 2
    assert state.update("k", lambda v: v + 1) == 3
    state.transact(lambda s: s.set("a", 11).set("b", 19))
    assert state.version("k") > versions["k"]
    late._store.committer.catch_up()
    assert (late["k"], late["a"], late["b"]) == (3, 11, 19)


# -- full disk -------------------------------------------------------------------------------


def test_a_full_disk_fails_the_write_saying_so_and_nothing_is_written(
    tmp_path: Path, open_state: Callable[[str], ServerState]
) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    state = open_state(url)
    state.update(k="small", a=10, b=20)
    versions = {k: state.version(k) for k in ("k", "a", "b")}
    committer = state._store.committer
    head = committer.head()
    conn = committer.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    limit = conn.execute("PRAGMA max_page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite answers SQLITE_FULL past it

    writes: list[tuple[str, Callable[[], Any]]] = [
        ("set", lambda: state.__setitem__("k", BIG)),
        ("update", lambda: state.update("k", lambda v: BIG)),
        ("transact", lambda: state.transact(lambda s: s.set("a", 11).set("b", BIG))),
    ]
    for name, write in writes:
        with pytest.raises(ServerStateConnectionError) as info:
            write()
        message = str(info.value)
        assert str(path) in message, (name, message)
        assert "disk is full" in message and "Free some space" in message, (name, message)
        assert "Nothing was written" in message, (name, message)

    # Nothing written: the mirror, the log and a store opened now agree on the state before.
    assert (state["k"], state["a"], state["b"]) == ("small", 10, 20)
    assert {k: state.version(k) for k in versions} == versions
    assert committer.head() == head
    other = open_state(url)
    assert (other["k"], other["a"], other["b"]) == ("small", 10, 20)
    assert {k: other.version(k) for k in versions} == versions

    conn.execute(f"PRAGMA max_page_count = {limit}")  # space again
    state["k"] = BIG
    assert state.version("k") == head + 1
    other._store.committer.catch_up()
    assert other["k"] == BIG


# -- read-only ---------------------------------------------------------------------------------

# Run in a child: root ignores file modes, so as root it becomes nobody, after
# its imports (the interpreter may live where nobody may not read, as under
# /root/.pyenv: exec as nobody through ``user=`` would fail). Answers one JSON
# line per step.
_READ_ONLY_CHILD = """
import json, os, sys
from server_state import ServerState
from server_state._store import store_from_url

state = ServerState(store_from_url(sys.argv[1]))
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)  # nobody
    assert os.geteuid() == 65534

def step(what, fn):
    try:
        answer = {"step": what, "value": fn()}
    except Exception as exc:
        answer = {"step": what, "error": type(exc).__name__, "message": str(exc),
                  "connection": isinstance(exc, ConnectionError)}
    print(json.dumps(answer), flush=True)

step("read", lambda: [state["k"], state.version("k")])
step("write", lambda: state.__setitem__("k", 2))
step("update", lambda: state.update("k", lambda v: v + 1))
step("read", lambda: [state["k"], state.version("k")])
state._store.close()
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory of its own that every user may reach (a test's tmp_path is
    in a directory only its owner may enter)."""
    made = Path(tempfile.mkdtemp(prefix="server-state-ro-"))
    try:
        yield made
    finally:
        made.chmod(0o700)
        shutil.rmtree(made)


@pytest.mark.parametrize("readonly", ["file", "file and directory"])
def test_a_read_only_file_fails_saying_so_and_naming_it(shared_dir: Path, readonly: str) -> None:
    path = shared_dir / "state.db"
    version = _make_state_file(path, k=1)["k"]
    before = _files(shared_dir)
    assert before.keys() == {"state.db"}
    path.chmod(0o444)
    shared_dir.chmod(0o555 if readonly == "file and directory" else 0o777)

    done = subprocess.run(
        [sys.executable, "-c", _READ_ONLY_CHILD, f"sqlite:///{path}"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
    )
    assert done.returncode == 0, done.stderr
    steps = [json.loads(line) for line in done.stdout.splitlines()]
    assert [s["step"] for s in steps] == ["read", "write", "update", "read"], steps

    if readonly == "file":
        # The state loads; each write says the file is read-only; reads go on.
        assert steps[0]["value"] == [1, version] and steps[3]["value"] == [1, version], steps
        refused = steps[1:3]
    else:
        # Not even a reader can share the file without its -shm and -wal:
        # the first use says so, and so does every use after it.
        refused = steps
    for s in refused:
        assert s.get("error") == "ServerStateConnectionError" and s["connection"], s
        assert "read-only" in s["message"] and str(path) in s["message"], s
        assert "state.db-wal" in s["message"], s  # what it needs to write besides the file
    assert _files(shared_dir)["state.db"] == before["state.db"]
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o444


# -- not a state file ---------------------------------------------------------------------


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(16384))


def _corrupt_pages(path: Path) -> None:
    _make_state_file(path, **{f"k{i}": "x" * 100 for i in range(200)})
    data = bytearray(path.read_bytes())
    data[4096:16384] = os.urandom(12288)  # the header page intact, the tables' pages not
    path.write_bytes(bytes(data))


def _foreign_tables(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
    conn.execute("INSERT INTO orders (item) VALUES ('tea')")
    conn.commit()
    conn.close()


def _foreign_mark(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 7")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()


def _newer_schema(path: Path) -> None:
    _make_state_file(path, k=1)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_random_bytes, ["not a SQLite database, or it is corrupt", "point SERVER_STATE_URL at a new file"]),
        (_corrupt_pages, ["it is corrupt", "Restore it from a backup"]),
        (_foreign_tables, ["a SQLite database of another program", "point SERVER_STATE_URL at a new file"]),
        (_foreign_mark, ["another program (application_id 0x7)", "point SERVER_STATE_URL at a new file"]),
        (_newer_schema, ["written by a newer server_state (schema 99", "upgrade server_state"]),
    ],
    ids=["random bytes", "corrupt pages", "foreign tables", "foreign mark", "newer schema"],
)
def test_a_file_that_is_not_a_state_file_is_refused_on_first_use_and_left_as_it_was(
    tmp_path: Path, open_state: Callable[[str], ServerState], make: Callable[[Path], None], says: list[str]
) -> None:
    path = tmp_path / "state.db"
    make(path)
    before = _files(tmp_path)
    assert before.keys() == {"state.db"}  # the makers leave no -wal behind
    state = open_state(f"sqlite:///{path}")  # configure time: the file is not opened yet

    uses: list[tuple[str, Callable[[], Any]]] = [
        ("read", lambda: state.get("k")),
        ("write", lambda: state.__setitem__("k", 2)),
        ("read again", lambda: state.get("k")),
    ]
    for name, use in uses:
        with pytest.raises(ServerStateError) as info:
            use()
        message = str(info.value)
        assert str(path) in message, (name, message)
        for words in says:
            assert words in message, (name, message)
    state._store.close()
    # Not switched to WAL, not migrated, nothing left beside it.
    assert _files(tmp_path) == before


def test_a_missing_directory_is_refused_on_first_use_naming_what_to_create(
    tmp_path: Path, open_state: Callable[[str], ServerState]
) -> None:
    path = tmp_path / "no" / "such" / "state.db"
    state = open_state(f"sqlite:///{path}")
    for use in (lambda: state.get("k"), lambda: state.__setitem__("k", 1)):
        with pytest.raises(ServerStateError, match="does not exist") as info:
            use()
        assert str(path) in str(info.value)
        assert f"create {path.parent} first" in str(info.value)
    assert list(tmp_path.iterdir()) == []


# -- bad URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://", "a SQLite URL names a file: sqlite:///relative/path.db"),
        ("sqlite:///", "a SQLite URL names a file"),
        ("sqlite:///:memory:", "for a state in this process only, use memory://"),
        ("sqlite:/x/state.db", "a SQLite URL names a file"),
        ("sqlite:///state.db?cache=shared", "unknown option cache (a SQLite URL takes synchronous, timeout"),
        ("sqlite:///state.db?synchronous=off", "synchronous='off'; use normal"),
        ("sqlite:///state.db?timeout=soon", "timeout and poll are numbers of seconds"),
        ("sqlite:///state.db?timeout=0", "timeout must be > 0"),
        ("sqlite:///state.db?timeout=inf", "timeout must be > 0 (and finite)"),
        ("sqlite:///state.db?timeout=nan", "timeout must be > 0 (and finite)"),
        ("sqlite:///state.db?poll=60", "poll between 0.001 and 10 seconds"),
    ],
)
def test_a_bad_sqlite_url_is_refused_at_configure_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    state = ServerState()
    with pytest.raises(ServerStateError) as info:
        state.configure(url)
    message = str(info.value)
    assert f"SERVER_STATE_URL={url}" in message and says in message, message
    state["k"] = 1  # still the memory store, still usable
    with contextlib.suppress(FileNotFoundError):
        assert list(tmp_path.iterdir()) == []
