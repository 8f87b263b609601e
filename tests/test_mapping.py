"""The mapping surface: ``ServerState`` is a ``MutableMapping`` and
``server_state_lock`` a read-only ``Mapping``, with this library's
guarantees (issue 23).

A hypothesis state machine runs every method of the ABC against a plain
dict as the model: the same results, the same error types (a
``ServerStateError`` that is also the builtin dict raises), and one commit
for each call that changes anything, none for one that does not. The
tests after it pin what the model cannot see: one commit for many keys,
typed keys, the two forms of ``update``, method names, the lock mapping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from pyrsistent import pvector

from server_state import (
    ServerState,
    ServerStateError,
    ServerStateKeyError,
    ServerStateLock,
    ServerStateTypeError,
    ServerStateValidationError,
)

KEYS = ["a", "b", "c", "pop", "keys"]  # two named like methods: item access must treat them as keys
NO_DEFAULT = object()

keys = st.sampled_from(KEYS)
# Values whose == is the store's "unchanged" (no 1 vs True vs 1.0): a model
# change is then exactly a commit.
values = st.one_of(st.integers(-3, 3), st.lists(st.integers(-3, 3), max_size=3))
pairs = st.lists(st.tuples(keys, values), max_size=4)


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as exc:  # what the model raised is compared, below
        return "raised", exc


class MappingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = ServerState()
        self.model: dict[str, Any] = {}

    def same_call(self, on_state: Callable[[], Any], on_model: Callable[[], Any]) -> Any:
        """Run both; same result or same builtin error type. One commit iff
        the model changed, none otherwise."""
        before_model, before_seq = dict(self.model), self.state.snapshot().seq
        got, want = outcome(on_state), outcome(on_model)
        assert got[0] == want[0], (got, want)
        if want[0] == "raised":
            assert isinstance(got[1], type(want[1])), (got, want)
            assert isinstance(got[1], ServerStateError), got
        else:
            assert got[1] == want[1], (got, want)
        changed = before_model != self.model or list(before_model) != list(self.model)
        assert self.state.snapshot().seq - before_seq == (1 if changed else 0)
        return got[1]

    @rule(key=keys, value=values)
    def setitem(self, key: str, value: Any) -> None:
        self.same_call(lambda: self.state.__setitem__(key, value), lambda: self.model.__setitem__(key, value))

    @rule(key=keys)
    def delitem(self, key: str) -> None:
        self.same_call(lambda: self.state.__delitem__(key), lambda: self.model.__delitem__(key))

    @rule(key=keys, default=st.one_of(st.just(NO_DEFAULT), values))
    def pop(self, key: str, default: Any) -> None:
        if default is NO_DEFAULT:
            self.same_call(lambda: self.state.pop(key), lambda: self.model.pop(key))
        else:
            self.same_call(lambda: self.state.pop(key, default), lambda: self.model.pop(key, default))

    @rule()
    def popitem(self) -> None:
        self.same_call(self.state.popitem, self.model.popitem)

    @rule()
    def clear(self) -> None:
        self.same_call(self.state.clear, self.model.clear)

    @rule(given=pairs, as_dict=st.booleans())
    def update_many(self, given: list[tuple[str, Any]], as_dict: bool) -> None:
        arg: Any = dict(given) if as_dict else given
        self.same_call(lambda: self.state.update(arg), lambda: self.model.update(arg))

    @rule(given=st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3), first=pairs)
    def update_keywords(self, given: dict[str, Any], first: list[tuple[str, Any]]) -> None:
        self.same_call(lambda: self.state.update(first, **given), lambda: self.model.update(first, **given))

    @rule(key=keys, default=values)
    def setdefault(self, key: str, default: Any) -> None:
        self.same_call(
            lambda: self.state.setdefault(key, default), lambda: self.model.setdefault(key, default)
        )

    @rule(key=keys)
    def get(self, key: str) -> None:
        self.same_call(lambda: self.state.get(key), lambda: self.model.get(key))
        self.same_call(lambda: self.state[key], lambda: self.model[key])
        self.same_call(lambda: key in self.state, lambda: key in self.model)

    @invariant()
    def reads_as_the_model(self) -> None:
        s, m = self.state, self.model
        assert s == m and m == s and not s != m  # noqa: SIM202  (__ne__ is under test)
        assert len(s) == len(m)
        assert list(s) == list(m) == s.keys()
        assert s.values() == list(m.values())
        assert s.items() == list(m.items())
        assert s != {**m, "other": 0}
        assert s != ({k: [v] for k, v in m.items()} if m else {"x": 1})


TestMappingAgainstADict = MappingMachine.TestCase
TestMappingAgainstADict.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# -- one commit, with everything a commit brings --------------------------------------


def test_update_of_many_keys_is_one_commit_and_equal_values_are_no_change(fresh_state: ServerState) -> None:
    s = fresh_state
    s["same"] = [1, 2]
    s["old"] = 0
    seen: list[tuple[str, int]] = []
    s.watch(None, lambda key, old, new, version: seen.append((key, version)), with_version=True)
    assert s.update({"same": [1, 2], "old": 1}, new="x") is None
    [commit] = s.history(limit=1)
    assert set(commit.keys) == {"old", "new"} and commit.created("new")
    assert s.version("old") == s.version("new") == commit.seq
    assert s.version("same") < commit.seq
    assert sorted(seen) == [("new", commit.seq), ("old", commit.seq)]
    s.update({"same": [1, 2]}, old=1)  # nothing changes: no commit
    s.update()
    assert s.history(limit=1)[0].seq == commit.seq and len(seen) == 2


@pytest.mark.parametrize(
    ("call", "gone"),
    [
        (lambda s: s.pop("b"), ["b"]),
        (lambda s: s.popitem(), ["c"]),  # the key set last, as dict.popitem
        (lambda s: s.clear(), ["a", "b", "c"]),
    ],
    ids=["pop", "popitem", "clear"],
)
def test_pop_popitem_and_clear_are_one_commit_each(
    fresh_state: ServerState, call: Callable[[ServerState], Any], gone: list[str]
) -> None:
    s = fresh_state
    s.update({"a": 1, "b": [2], "c": 3})
    before = s.snapshot().seq
    seen: list[str] = []
    s.watch(None, lambda key, old, new: seen.append(key))
    call(s)
    [commit] = s.history(limit=1)
    assert commit.seq == before + 1 == s.snapshot().seq
    assert sorted(commit.keys) == sorted(gone) == sorted(seen)
    assert all(commit.deleted(k) for k in gone)
    assert all(s.version(k) == commit.seq for k in gone)
    assert s.at(before) == {"a": 1, "b": [2], "c": 3}


def test_popped_values_read_as_reads_do_and_are_not_kept(fresh_state: ServerState) -> None:
    s = fresh_state
    s["log"] = pvector(range(3))
    popped = s.pop("log")
    assert popped == [0, 1, 2] and type(popped) is not type(pvector())  # the read form
    with pytest.raises(TypeError, match="read-only"):
        popped.append(3)
    assert "log" not in s._read_cache  # a popped value is not held by the read cache
    s["m"] = {"k": [1]}
    key, value = s.popitem()
    assert (key, value) == ("m", {"k": [1]})


def test_many_keys_written_by_update_are_seen_together_or_not_at_all(fresh_state: ServerState) -> None:
    """A reader taking snapshots while update(mapping) moves a balance never
    sees half a commit (a loop of single writes would show it)."""
    s = fresh_state
    s.update({"a": 0, "b": 0})
    start = threading.Barrier(2)
    done = threading.Event()
    torn: list[Mapping[str, Any]] = []

    def writer() -> None:
        start.wait()
        for i in range(1, 300):
            s.update({"a": i, "b": -i})
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    start.wait()
    while not done.is_set():
        view = s.snapshot()
        if view["a"] + view["b"] != 0:
            torn.append(dict(view))
    thread.join()
    assert torn == []
    assert s == {"a": 299, "b": -299}


def test_declared_keys_refuse_a_bad_pair_and_nothing_is_written(fresh_state: ServerState) -> None:
    s = fresh_state
    s.key("n", int, validator=lambda n: n >= 0)
    s["n"] = 1
    seq = s.snapshot().seq
    with pytest.raises(ServerStateTypeError, match="'n'"):
        s.update({"other": 1, "n": "one"})
    with pytest.raises(ServerStateValidationError, match="'n'"):
        s.update([("other", 1)], n=-1)
    assert s.snapshot().seq == seq and "other" not in s
    s.update(n=2, other=1)
    assert s == {"n": 2, "other": 1}
    assert s.pop("n") == 2  # deleting a declared key is allowed, as with del


# -- the two forms of update, and calls that fit neither -------------------------------


def test_update_tells_its_two_forms_apart(fresh_state: ServerState) -> None:
    s = fresh_state
    assert s.update("n", lambda n: n + 1, default=0) == 1
    assert s.update("n", lambda n: n + 1, 0) == 2
    assert s.update(key="n", fn=lambda n: n + 1) == 3  # spelt out: still one key
    s.update({"key": "k", "fn": "f"})  # keys with those names: a mapping
    s.update(key="only key")  # keywords alone are dict's form
    assert s == {"n": 3, "key": "only key", "fn": "f"}


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.update("k"),
        lambda s: s.update("k", 5),
        lambda s: s.update("k", lambda v: v, 0, 1),
        lambda s: s.update("k", lambda v: v, fn=lambda v: v),
        lambda s: s.update("k", lambda v: v, extra=1),
        lambda s: s.update({"a": 1}, {"b": 2}),
        lambda s: s.update(5),
        lambda s: s.update([("a", 1), ("b",)]),
        lambda s: s.update([("a", 1), 7]),
        lambda s: s.update({1: "x"}),
    ],
    ids=[
        "key alone",
        "key and a value",
        "too many positionals",
        "fn twice",
        "unknown keyword",
        "two mappings",
        "not a mapping",
        "a short pair",
        "not a pair",
        "a non-str key",
    ],
)
def test_an_update_that_fits_neither_form_says_so_and_changes_nothing(
    fresh_state: ServerState, call: Callable[[ServerState], Any]
) -> None:
    s = fresh_state
    s["a"] = 0
    seq = s.snapshot().seq
    with pytest.raises(ServerStateTypeError) as raised:
        call(s)
    assert isinstance(raised.value, TypeError)
    message = str(raised.value)
    assert "update(key, fn" in message or "pair" in message or "must be str" in message, message
    assert s.snapshot().seq == seq and s == {"a": 0}


def test_missing_keys_raise_key_error_naming_the_key(fresh_state: ServerState) -> None:
    s = fresh_state
    with pytest.raises(ServerStateKeyError, match=r"'gone'.*pop\('gone', None\)") as raised:
        s.pop("gone")
    assert isinstance(raised.value, KeyError) and raised.value.key == "gone"
    assert s.pop("gone", None) is None
    with pytest.raises(ServerStateKeyError, match="empty"):
        s.popitem()
    assert s.snapshot().seq == 0


# -- a mapping, with method names as methods ------------------------------------------


def test_it_is_a_mutable_mapping_and_method_names_are_methods(fresh_state: ServerState) -> None:
    s = fresh_state
    assert isinstance(s, MutableMapping)
    for name in ("pop", "popitem", "clear", "update", "setdefault", "keys", "items", "values", "get"):
        assert callable(getattr(s, name)) and getattr(type(s), name)
    s["pop"] = 1
    assert s["pop"] == 1 and s.pop("pop") == 1
    with pytest.raises(ServerStateTypeError, match=r"server_state\['clear'\]"):
        s.clear = 2
    assert s == {} and {} == s  # noqa: SIM300  (the reflected comparison is under test)
    assert s != [] and s != None  # noqa: E711  (not a mapping: unequal, no error)
    with pytest.raises(TypeError, match="unhashable"):
        hash(s)


def test_equality_is_that_of_dicts(fresh_state: ServerState) -> None:
    s = fresh_state
    s.update([("b", [1]), ("a", {"x": (1, 2)})])
    assert s == {"a": {"x": (1, 2)}, "b": [1]}  # order does not matter
    assert s == s.snapshot()
    assert s != {"a": {"x": (1, 2)}, "b": [1.5]}
    assert s != {"a": {"x": (1, 2)}}


# -- server_state_lock -----------------------------------------------------------------


def test_the_lock_is_a_read_only_mapping_of_the_keys_that_have_a_lock(
    fresh_state: ServerState, fresh_lock: ServerStateLock
) -> None:
    s, lock = fresh_state, fresh_lock
    assert isinstance(lock, Mapping) and not isinstance(lock, MutableMapping)
    s["foo"] = 42  # upstream's own test: a key set has a lock
    not_a_key: object = 0
    assert "foo" in lock and "bar" not in lock and not_a_key not in lock
    with lock["counter"]:  # a lock before its key
        pass
    assert list(lock) == list(lock.keys()) == ["foo", "counter"] and len(lock) == 2
    assert lock.get("counter") is lock["counter"] is lock.counter
    assert lock["keys"] is not None and "keys" in lock and callable(lock.keys)
    assert dict(lock.items())["foo"] is lock["foo"]
    with pytest.raises(TypeError):
        lock["x"] = 1
    with pytest.raises(AttributeError, match="read-only"):
        lock.foo = 1
    assert s.stats()["sessions"] == 0 and s.snapshot().seq == 1  # none of it wrote anything
