"""``python -m server_state dump URL`` and ``load URL``, run as real
subprocesses against a real redis-server: every value type an app stores
comes back exactly, in first-set order; a load is all or nothing; a
non-empty state is refused unless ``--replace``; bad input and bad URLs end
with exit 1 and one line on stderr. The format is in ``server_state/_cli.py``
and docs/backup.md."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dump_values import Color, app_values
from redis_support import free_port

from server_state._store import Store, store_from_url
from server_state._values import freeze

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m server_state ARGS`` in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVER_STATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS)])
    return subprocess.run(
        [sys.executable, "-m", "server_state", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def failed(done: subprocess.CompletedProcess[str]) -> str:
    """The one line of an expected error (exit 1, no traceback)."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    return done.stderr


@pytest.fixture
def stores(redis_url: str) -> Iterator[dict[str, Store]]:
    """Namespaces of the session's redis-server, opened on demand, closed after."""
    opened: dict[str, Store] = {}

    class Stores(dict[str, Store]):
        def __missing__(self, namespace: str) -> Store:
            store = opened[namespace] = store_from_url(redis_url, namespace=namespace)
            return store

    yield Stores()
    for store in opened.values():
        store.close()


def fill(store: Store, values: dict[str, Any]) -> None:
    for key, value in values.items():
        store.set(key, freeze(value, key))


def fresh_read(redis_url: str, namespace: str) -> tuple[list[str], dict[str, Any]]:
    """What a replica that starts now reads: the keys in order and the values."""
    store = store_from_url(redis_url, namespace=namespace)
    try:
        return store.keys(), dict(store.state.values)
    finally:
        store.close()


def assert_same(got: Any, want: Any) -> None:
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, pd.DataFrame):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    else:
        assert got == want


@pytest.mark.timeout(120)
def test_dump_then_load_into_another_namespace_keeps_every_value_and_the_order(
    redis_url: str, stores: dict[str, Store], tmp_path: Path
) -> None:
    values = app_values()
    fill(stores["A"], values)
    stored = dict(stores["A"].state.values)
    dump = tmp_path / "state.jsonl"

    done = cli("dump", redis_url, "--namespace", "A", "--import", "dump_values", "-o", str(dump))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        f"server_state dump: dumped {len(values)} keys at commit {len(values)} from {redis_url} to {dump}\n"
    )
    lines = dump.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["server_state_dump"] == 1
    assert (header["source"], header["seq"], header["keys"], header["codec"]) == (
        redis_url,
        len(values),
        len(values),
        "tagged",
    )
    items = [json.loads(line) for line in lines[1:]]
    assert [item["key"] for item in items] == list(values)
    assert items[list(values).index("color")]["type"] == "Color"
    assert items[list(values).index("color")]["repr"] == "<Color.GREEN: 'green'>"  # for grep

    done = cli("load", redis_url, "--namespace", "B", "--import", "dump_values", stdin=dump.read_text())
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(
        f"server_state load: loaded {len(values)} keys at commit 1 into {redis_url}"
    )

    keys, loaded = fresh_read(redis_url, "B")
    assert keys == list(values)
    for key, want in stored.items():
        assert_same(loaded[key], want)
    assert loaded["color"] is Color.GREEN
    assert loaded["meeting"].fold == 1 and loaded["meeting"].tzinfo.key == "Europe/Paris"
    assert str(loaded["price"]) == "19.990"
    assert loaded["frame"]["when"].dtype == values["frame"]["when"].dtype


@pytest.mark.timeout(120)
def test_load_refuses_a_state_with_keys_and_replace_makes_it_exactly_the_dump(
    redis_url: str, stores: dict[str, Store]
) -> None:
    fill(stores["A"], {"x": 1, "y": [1, 2], "z": "zed"})
    dump = cli("dump", redis_url, "--namespace", "A").stdout
    fill(stores["B"], {"other": 1, "y": "B's own", "x": 1})
    before = fresh_read(redis_url, "B")

    refused = failed(cli("load", redis_url, "--namespace", "B", stdin=dump))
    assert "has 3 keys already; nothing was written" in refused and "--replace" in refused
    assert fresh_read(redis_url, "B") == before

    done = cli("load", redis_url, "--namespace", "B", "--replace", stdin=dump)
    assert done.returncode == 0, done.stderr
    assert "1 other keys deleted, 1 unchanged" in done.stderr
    keys, loaded = fresh_read(redis_url, "B")
    assert loaded == {"x": 1, "y": freeze([1, 2], "y"), "z": "zed"}
    assert set(keys) == {"x", "y", "z"}


@pytest.mark.timeout(120)
def test_a_corrupt_line_is_named_and_nothing_is_written(
    redis_url: str, stores: dict[str, Store], tmp_path: Path
) -> None:
    fill(stores["A"], {"a": 1, "b": 2, "c": 3})
    lines = cli("dump", redis_url, "--namespace", "A").stdout.splitlines(keepends=True)
    item = json.loads(lines[2])
    item["value"] = base64.b64encode(b"M\xc1").decode()  # 0xc1: never used in msgpack
    lines[2] = json.dumps(item) + "\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines))

    error = failed(cli("load", redis_url, "--namespace", "B", "-i", str(bad)))
    assert f"{bad} line 3, key 'b': cannot be decoded: " in error
    assert error.endswith("; nothing was written.\n")
    assert fresh_read(redis_url, "B") == ([], {})


@pytest.mark.timeout(120)
def test_what_is_not_a_dump_is_refused_naming_the_line(redis_url: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"hello": "world"}\n')
    error = failed(cli("load", redis_url, "-i", str(notes)))
    assert error == (
        f"server_state load: error: {notes} is not a server_state dump "
        f'({notes} line 1 has no "server_state_dump" header).\n'
    )
    newer = json.dumps({"server_state_dump": 2, "codec": "tagged", "keys": 0})
    error = failed(cli("load", redis_url, stdin=newer + "\n"))
    assert "stdin line 1: a dump of format 2, newer than this server_state reads (1)" in error


@pytest.mark.timeout(120)
def test_an_enum_whose_module_is_not_imported_fails_the_dump_instead_of_leaving_the_key_out(
    redis_url: str, stores: dict[str, Store]
) -> None:
    fill(stores["A"], {"ok": 1, "color": Color.RED})
    done = cli("dump", redis_url, "--namespace", "A")
    error = failed(done)
    assert error == (
        f"server_state dump: error: {redis_url}: the value of 'color' there cannot be read: it holds a "
        "member of the enum dump_values.Color, whose module is not imported: pass --import dump_values; "
        "no dump was written.\n"
    )
    assert done.stdout == ""


def test_memory_and_unreachable_redis_are_refused_with_one_line() -> None:
    error = failed(cli("dump", "memory://"))
    assert "memory:// state lives in the app's own process" in error
    url = f"redis://127.0.0.1:{free_port()}/0"
    error = failed(cli("load", url, stdin=""))
    assert error == "server_state load: error: stdin is empty: no server_state dump there.\n"
    error = failed(cli("dump", url))
    assert f"could not reach Redis at {url}" in error


@pytest.mark.timeout(120)
def test_a_state_moves_from_sqlite_to_redis_and_back_in_two_commands_each(
    redis_url: str, stores: dict[str, Store], tmp_path: Path
) -> None:
    """An app that outgrows one host: its SQLite state to Redis, and from
    Redis to a new SQLite file; every value exact, in first-set order."""
    values = app_values()
    first = f"sqlite:///{tmp_path}/first.db"
    source = store_from_url(first)
    try:
        fill(source, values)
        stored = dict(source.state.values)
    finally:
        source.close()
    dump = tmp_path / "state.jsonl"
    assert cli("dump", first, "--import", "dump_values", "-o", str(dump)).returncode == 0
    done = cli("load", redis_url, "--namespace", "moved", "--import", "dump_values", "-i", str(dump))
    assert done.returncode == 0, done.stderr
    again = cli("dump", redis_url, "--namespace", "moved", "--import", "dump_values")
    assert again.returncode == 0, again.stderr
    second = f"sqlite:///{tmp_path}/second.db"
    done = cli("load", second, "--import", "dump_values", stdin=again.stdout)
    assert done.returncode == 0, done.stderr
    for url, namespace in ((None, "moved"), (second, None)):
        if url is None:
            keys, loaded = fresh_read(redis_url, namespace or "")
        else:
            store = store_from_url(url)
            try:
                keys, loaded = store.keys(), dict(store.state.values)
            finally:
                store.close()
        assert keys == list(values)
        for key, want in stored.items():
            assert_same(loaded[key], want)
