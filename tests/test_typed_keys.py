"""Typed keys: ``server_state.key(name, type, default=..., validator=...)``.

The declaration holds for every write of the key, through the handle or not
(item and attribute assignment, update, transact, setdefault): a refused
write raises, names the key and leaves the state and the version as they
were. The mypy side (a wrong-type use is reported) is in
tests/typing/ and checked at the end of this file."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyrsistent import pvector

import server_state as pkg
from server_state import (
    FrozenList,
    Key,
    ReadOnlyValueError,
    ServerState,
    ServerStateError,
    ServerStateKeyError,
    ServerStateTypeError,
    ServerStateValidationError,
    thaw,
)

ROOT = Path(__file__).resolve().parent.parent


def fingerprint(s: ServerState) -> tuple[int, dict[str, Any], dict[str, int]]:
    snap = s.snapshot()
    return snap.seq, {k: thaw(snap[k]) for k in snap}, {k: s.version(k) for k in snap}


def short(value: list[str]) -> bool:
    return len(value) <= 2


def non_negative(n: int) -> bool:
    return n >= 0


# -- the handle ------------------------------------------------------------------------


def test_get_set_update_peek_version(fresh_state: ServerState) -> None:
    s = fresh_state
    count = s.key("count", int, default=0)
    assert isinstance(count, Key) and count.name == "count"
    assert count.get() == 0 and count.peek() == 0
    assert count.version == 0 and not count.exists()
    assert "count" not in s  # the default is returned, not stored
    count.set(5)
    assert count.get() == 5 == s["count"] and count.version == 1 and count.exists()
    assert count.update(lambda n: n + 1) == 6 and s["count"] == 6 and count.version == 2
    count.set(6)  # equal write: no change
    assert count.version == 2
    assert count.delete() is True and count.get() == 0 and count.delete() is False
    assert count.update(lambda n: n + 10) == 10  # absent: starts from the default


def test_without_default_an_absent_key_raises(fresh_state: ServerState) -> None:
    s = fresh_state
    name = s.key("name", str)
    with pytest.raises(ServerStateKeyError, match="'name'"):
        name.get()
    with pytest.raises(KeyError):
        name.peek()
    with pytest.raises(KeyError):
        name.update(str.upper)
    name.set("ada")
    assert name.update(str.upper) == "ADA"


def test_get_binds_and_peek_does_not(fresh_state: ServerState) -> None:
    s = fresh_state
    a = s.key("a", int, default=0)
    b = s.key("b", int, default=0)
    tracker = s._tracker
    entry = tracker.ensure_entry("reader", None)
    in_run = contextvars.Context()
    run = tracker.run_started(entry, None)
    in_run.run(tracker.current_run.set, run)
    assert in_run.run(a.get) == 0
    assert in_run.run(b.peek) == 0
    tracker.run_finished(run, True)
    assert s.bound_sessions("a") == 1
    assert s.bound_sessions("b") == 0


def test_list_values_are_stored_frozen_and_read_back_as_lists(fresh_state: ServerState) -> None:
    s = fresh_state
    names = s.key("names", list[str], default=[])
    assert names.get() == [] and isinstance(names.get(), FrozenList)
    mine = ["ada"]
    names.set(mine)
    mine.append("bob")  # the state kept a copy
    got = names.get()
    assert got == ["ada"] and isinstance(got, list) and isinstance(got, FrozenList)
    with pytest.raises(ReadOnlyValueError):
        got.append("eve")
    # Read back and written again (a FrozenList is a list): accepted.
    names.set(got)
    assert names.update(lambda v: [*v, "bob"]) == ["ada", "bob"]
    assert names.update(lambda v: v + ["cy"]) == ["ada", "bob", "cy"]  # noqa: RUF005  (FrozenList + list)
    s["names"] = pvector(["x"])  # its read form is a list: accepted
    assert names.get() == ["x"] and isinstance(names.get(), list)
    with pytest.raises(ServerStateTypeError):
        names.set(("a", "b"))  # type: ignore[arg-type]  # a tuple is not a list


def test_the_default_is_read_only_and_shared(fresh_state: ServerState) -> None:
    s = fresh_state
    seen = s.key("seen", list[int], default=[])
    with pytest.raises(ReadOnlyValueError):
        seen.get().append(1)
    assert seen.get() == []


def test_value_types(fresh_state: ServerState) -> None:
    s = fresh_state
    both = s.key("both", (int, str), default=0)
    both.set("x")
    both.set(3)
    with pytest.raises(ServerStateTypeError):
        s["both"] = 1.5
    user: Key[str | None] = s.key("user", str | None, default=None)
    assert user.get() is None
    user.set("ada")
    user.set(None)
    with pytest.raises(ServerStateTypeError, match=r"str \| None"):
        s["user"] = 3
    ratio = s.key("ratio", float, default=0)  # an int is a float to a type checker: accepted
    ratio.set(2)
    ratio.set(0.5)
    tags = s.key("tags", frozenset, default=frozenset())
    s["tags"] = {"a"}  # a set is stored and read back as a frozenset
    assert tags.get() == frozenset({"a"})
    anything = s.key("anything", object)
    anything.set([1])


@pytest.mark.parametrize("tp", [set, bytearray, dict[str, Any] | set[int]])
def test_types_a_read_never_gives_are_refused(fresh_state: ServerState, tp: Any) -> None:
    with pytest.raises(ServerStateTypeError, match="declare"):
        fresh_state.key("k", tp)
    assert "k" not in fresh_state._typed


def test_uncheckable_types_are_refused(fresh_state: ServerState) -> None:
    with pytest.raises(ServerStateTypeError, match="'k'"):
        fresh_state.key("k", "int")
    with pytest.raises(ServerStateTypeError, match="callable"):
        fresh_state.key("k", int, validator=3)  # type: ignore[arg-type]


def test_a_wrong_default_is_refused(fresh_state: ServerState) -> None:
    with pytest.raises(ServerStateTypeError, match="default"):
        fresh_state.key("count", int, default="0")
    with pytest.raises(ServerStateValidationError, match="default"):
        fresh_state.key("count", int, default=-1, validator=lambda n: n >= 0)
    assert not fresh_state._typed


def test_declaring_a_key_that_holds_a_wrong_value_is_refused(fresh_state: ServerState) -> None:
    s = fresh_state
    s["count"] = "three"
    with pytest.raises(ServerStateTypeError, match=r"already holds.*del server_state\['count'\]"):
        s.key("count", int)
    s["count"] = "four"  # not declared: anything goes
    del s["count"]
    s.key("count", int).set(4)


# -- the same declaration again --------------------------------------------------------


def test_the_same_declaration_returns_the_same_handle(fresh_state: ServerState) -> None:
    s = fresh_state
    a = s.key("names", list[str], default=[], validator=short)
    assert s.key("names", list[str], default=[], validator=short) is a
    # A script rerun defines its lambdas and classes anew: still the same declaration.
    rerun = [s.key("n", int, default=0, validator=lambda v: v >= 0) for _ in range(2)]
    assert rerun[0] is rerun[1]


def test_a_different_declaration_is_an_error(fresh_state: ServerState) -> None:
    s = fresh_state
    s.key("count", int, default=0, validator=lambda n: n >= 0)
    for other in (
        lambda: s.key("count", str, default=""),
        lambda: s.key("count", int, default=0),
        lambda: s.key("count", int, default=0, validator=non_negative),
        lambda: s.key("count", int, default=1, validator=lambda n: n >= 0),
        lambda: s.key("count", float, default=0, validator=lambda n: n >= 0),
    ):
        with pytest.raises(ServerStateError, match=r"'count'.*already declared as int"):
            other()


# -- every write path ------------------------------------------------------------------


def _writes(s: ServerState, value: Any) -> dict[str, Callable[[], Any]]:
    return {
        "handle": lambda: s.key("count", int, default=0, validator=non_negative).set(value),
        "item": lambda: s.__setitem__("count", value),
        "attribute": lambda: setattr(s, "count", value),
        "update": lambda: s.update("count", lambda n: value),
        "handle update": lambda: s.key("count", int, default=0, validator=non_negative).update(
            lambda n: value
        ),
        "transact": lambda: s.transact(lambda m: m.set("count", value).set("other", 1)),
        "transact whole map": lambda: s.transact(lambda m: m.update({"count": value}) if len(m) else m),
        "transact evolver": lambda: s.transact(lambda m: _evolve(m, value)),
        "setdefault": lambda: s.setdefault("fresh", value),
    }


def _evolve(m: Any, value: Any) -> Any:
    e = m.evolver()
    e["count"] = value
    return e.persistent()


WRITES = list(_writes(ServerState(), 0))


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        ("x", ServerStateTypeError, ["declared int", "'x'", "str"]),
        (-1, ServerStateValidationError, ["validator", "-1"]),
    ],
)
def test_a_refused_write_changes_nothing(
    fresh_state: ServerState, path: str, bad: Any, error: type[Exception], words: list[str]
) -> None:
    s = fresh_state
    count = s.key("count", int, default=0, validator=non_negative)
    s.key("fresh", int, validator=non_negative)
    count.set(3)
    s["other"] = 0
    before = fingerprint(s)
    with pytest.raises(error) as info:
        _writes(s, bad)[path]()
    assert isinstance(info.value, ServerStateError)
    assert isinstance(info.value, TypeError if error is ServerStateTypeError else ValueError)
    key = "fresh" if path == "setdefault" else "count"
    assert info.value.key == key
    message = str(info.value)
    assert f"server_state[{key!r}]" in message and "Nothing was written" in message
    for word in words:
        assert word in message
    assert fingerprint(s) == before
    assert count.version == 1 and s["count"] == 3
    # And a good value goes through the same path.
    _writes(s, 7)[path]()
    assert (s["fresh"] if path == "setdefault" else s["count"]) == 7


def test_a_validator_that_raises_rejects_and_is_chained(fresh_state: ServerState) -> None:
    s = fresh_state

    def positive(n: int) -> bool:
        if n <= 0:
            raise ValueError("must be positive")
        return True

    count = s.key("count", int, default=1, validator=positive)
    count.set(2)
    with pytest.raises(ServerStateValidationError, match=r"positive.*ValueError: must be positive") as info:
        count.set(0)
    assert isinstance(info.value.__cause__, ValueError)
    assert count.get() == 2 and count.version == 1


def test_a_validator_returning_none_rejects(fresh_state: ServerState) -> None:
    s = fresh_state
    k = s.key("k", int, validator=lambda n: None)
    with pytest.raises(ServerStateValidationError, match="returned None"):
        k.set(1)


def test_setdefault_checks_the_default_even_when_set(fresh_state: ServerState) -> None:
    s = fresh_state
    s.key("count", int, default=0)
    s["count"] = 1
    with pytest.raises(ServerStateTypeError):
        s.setdefault("count", "x")
    assert s.setdefault("count", 5) == 1


def test_update_retries_recheck_and_deletes_are_not_validated(fresh_state: ServerState) -> None:
    s = fresh_state
    count = s.key("count", int, default=0, validator=lambda n: n < 3)
    calls: list[int] = []

    def bump(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            s._store.set("count", 2)  # another writer gets in first: fn runs again on 2
        return n + 1

    with pytest.raises(ServerStateValidationError):
        count.update(bump)
    assert calls == [0, 2]  # the first result (1) was fine; the retried one (3) was refused
    assert count.get() == 2
    assert count.delete() and not count.exists()


def test_transact_checks_only_written_declared_keys(fresh_state: ServerState) -> None:
    s = fresh_state
    s.key("a", int, default=0)
    s["a"] = 1
    s["free"] = 0
    result = s.transact(lambda m: m.set("free", "anything").set("b", [1]))
    assert result["free"] == "anything"
    s.transact(lambda m: m.remove("a"))  # a delete is not a value
    assert "a" not in s


def test_revert_is_checked_too(fresh_state: ServerState) -> None:
    s = fresh_state
    s["late"] = "x"
    seq = s.history("late", 1)[0].seq
    del s["late"]
    s.key("late", int, default=0)
    before = fingerprint(s)
    with pytest.raises(ServerStateTypeError, match="'late'"):
        s.revert(seq, ["late"])
    assert fingerprint(s) == before


def test_undeclared_keys_and_other_states_are_unaffected(fresh_state: ServerState) -> None:
    s = fresh_state
    s.key("count", int, default=0)
    other = ServerState()
    other["count"] = "x"  # another state: its own declarations
    s["count2"] = "x"


def test_update_via_handle_from_8_threads_stays_exact(fresh_state: ServerState) -> None:
    s = fresh_state
    count = s.key("count", int, default=0, validator=lambda n: n >= 0)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            for _ in range(500):
                count.update(lambda n: n + 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads) and not errors
    assert count.get() == 4000 and count.version == 4000


def test_exports() -> None:
    assert pkg.Key is Key and "Key" in pkg.__all__
    assert "ServerStateValidationError" in pkg.__all__
    assert issubclass(ServerStateValidationError, ServerStateError)
    assert issubclass(ServerStateValidationError, ValueError)
    handle = pkg.server_state.key("tests.typed_keys.exports", int, default=0)
    assert repr(handle) == "<server_state key 'tests.typed_keys.exports': int>"


# -- mypy ------------------------------------------------------------------------------


def _mypy(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_mypy_strict_passes_on_the_example_and_reports_the_wrong_type_use() -> None:
    ok = _mypy(ROOT / "examples" / "typed_keys.py", ROOT / "tests" / "typing" / "typed_keys_ok.py")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _mypy(ROOT / "tests" / "typing" / "typed_keys_wrong.py")
    errors = [line for line in bad.stdout.splitlines() if ": error:" in line]
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert len(errors) == 1, bad.stdout
    assert "typed_keys_wrong.py:" in errors[0]
    assert 'Argument 1 to "set" of "Key" has incompatible type "str"; expected "int"' in errors[0], errors[0]


# -- the example, under AppTest (as tests/test_examples_smoke.py runs the others) ------


def test_example_app() -> None:
    from streamlit.testing.v1 import AppTest

    state = pkg.server_state
    for k in ("typed_count", "typed_guests"):
        if k in state:
            del state[k]
    try:
        at = AppTest.from_file(str(ROOT / "examples" / "typed_keys.py"), default_timeout=30)
        at.run()
        assert not at.exception, at.exception

        def metric(label: str) -> str:
            return str(next(m for m in at.metric if m.label == label).value)

        def button(label: str) -> Any:
            return next(b for b in at.button if b.label == label)

        assert metric("Count") == "0"
        button("+1").click().run()
        assert not at.exception, at.exception
        assert metric("Count") == "1"
        button("-1").click().run()
        button("-1").click().run()
        assert not at.exception, at.exception
        assert metric("Count") == "0" and state.peek("typed_count") == 0
        assert "below zero" in at.warning[0].value

        at.text_input[0].set_value("ada")
        button("Add guest").click().run()
        assert not at.exception, at.exception
        assert "- ada" in [m.value for m in at.markdown] and not at.warning
        version = state.version("typed_guests")
        at.text_input[0].set_value("ada")
        button("Add guest").click().run()
        assert "already on the list" in at.warning[0].value
        assert state.peek("typed_guests") == ["ada"] and state.version("typed_guests") == version
        with pytest.raises(ServerStateTypeError, match="typed_guests"):
            state["typed_guests"] = "ada"  # the declaration holds outside the handle too
        button("Clear the list").click().run()
        assert not at.exception, at.exception
        assert state.peek("typed_guests") == []
    finally:
        for k in ("typed_count", "typed_guests"):
            if k in state:
                del state[k]


def test_a_validator_that_declares_a_key_itself_does_not_deadlock(fresh_state: ServerState) -> None:
    """The existing value is checked outside the registry's lock: the
    validator is the app's code and may itself call ``server_state.key``."""
    fresh_state["a"] = 5
    outcome: list[Any] = []

    def valid(n: int) -> bool:
        fresh_state.key("b", int, default=0)
        return n > 0

    worker = threading.Thread(
        target=lambda: outcome.append(fresh_state.key("a", int, validator=valid).get()), daemon=True
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "server_state.key deadlocked on a validator that declares a key"
    assert outcome == [5]
    assert fresh_state.key("b", int, default=0).get() == 0
