"""The facade as the README's API shows it: mapping and attribute style,
keys (str subclasses and enums), locks, bad input, watchers, snapshots,
no_rerun and force_rerun_bound_sessions. Outside Streamlit: no sessions, so
nothing is rerun; these are about the state."""

from __future__ import annotations

import copy
import enum
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pyrsistent import PMap, pvector

import server_state as pkg
from server_state import (
    MISSING,
    NoRerun,
    RerunSuppressedError,
    ServerState,
    ServerStateError,
    ServerStateLock,
    ServerStateTypeError,
    _check_key,
    no_rerun,
    thaw,
)
from server_state._base import StoreState

JOIN = 60.0


def fingerprint(s: ServerState) -> tuple[int, dict[str, Any], dict[str, int]]:
    snap = s.snapshot()
    return snap.seq, {k: thaw(snap[k]) for k in snap}, {k: s.version(k) for k in snap}


def in_thread(fn: Callable[[], Any]) -> Any:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(JOIN)
    assert not t.is_alive(), "did not finish: deadlock"
    if "error" in out:
        raise out["error"]
    return out["value"]


# -- the mapping ---------------------------------------------------------------------


def test_item_and_attribute_style_are_the_same_key(fresh_state: ServerState) -> None:
    s = fresh_state
    s["count"] = 1
    assert s.count == 1
    s.count = 2
    assert s["count"] == 2
    del s.count
    assert "count" not in s
    with pytest.raises(KeyError):
        s["count"]


def test_mapping_protocol(fresh_state: ServerState) -> None:
    s = fresh_state
    assert len(s) == 0 and list(s) == []
    s["a"] = 1
    s["b"] = [2]
    s["c"] = None  # a key set to None is present
    assert len(s) == 3
    assert sorted(s) == ["a", "b", "c"]
    assert sorted(s.keys()) == ["a", "b", "c"]
    assert sorted(map(repr, map(thaw, s.values()))) == ["1", "None", "[2]"]
    assert dict(s.items()) == {"a": 1, "b": [2], "c": None}
    assert "a" in s and "c" in s and "z" not in s
    assert s.get("c", "default") is None
    assert s.get("z") is None and s.get("z", 5) == 5
    assert s.peek("a") == 1 and s.peek("z", 7) == 7
    del s["a"]
    assert len(s) == 2 and "a" not in s
    assert s.get("a", "gone") == "gone"


def test_iteration_is_safe_while_writing(fresh_state: ServerState) -> None:
    s = fresh_state
    for i in range(5):
        s[f"k{i}"] = i
    for key in s:  # a dict would raise "changed size during iteration"
        del s[key]
        s[key + "_new"] = 0
    assert sorted(s) == [f"k{i}_new" for i in range(5)]


def test_str_subclass_keys_are_plain_str_keys(fresh_state: ServerState) -> None:
    class Name(str):
        pass

    s = fresh_state
    s[Name("a")] = 1
    assert s["a"] == 1
    assert [type(k) for k in s] == [str]


def test_missing_key_read_raises_key_error_naming_it(fresh_state: ServerState) -> None:
    s = fresh_state
    with pytest.raises(KeyError) as info:
        s["missing"]
    assert isinstance(info.value, ServerStateError)
    assert "'missing'" in str(info.value)


def test_missing_attribute_is_both_key_error_and_attribute_error(fresh_state: ServerState) -> None:
    s = fresh_state
    assert hasattr(s, "missing") is False
    assert getattr(s, "missing", "fallback") == "fallback"
    with pytest.raises(KeyError) as info:
        s.missing  # noqa: B018
    assert isinstance(info.value, AttributeError)
    assert "'missing'" in str(info.value)
    with pytest.raises(AttributeError):
        s.missing  # noqa: B018
    s["missing"] = 1
    assert hasattr(s, "missing") is True


# -- bad input leaves the store unchanged ---------------------------------------------

BAD_KEYS = [1, None, b"key", ("a",), 1.5]

KEY_OPS: dict[str, Callable[[ServerState, Any], Any]] = {
    "getitem": lambda s, k: s[k],
    "get": lambda s, k: s.get(k),
    "peek": lambda s, k: s.peek(k),
    "setitem": lambda s, k: s.__setitem__(k, 1),
    "delitem": lambda s, k: s.__delitem__(k),
    "update": lambda s, k: s.update(k, lambda v: v, default=0),
    "setdefault": lambda s, k: s.setdefault(k, 0),
    "version": lambda s, k: s.version(k),
    "snapshot": lambda s, k: s.snapshot(k),
    "watch": lambda s, k: s.watch([k], lambda *a: None),
    "force_rerun": lambda s, k: s.force_rerun(k),
}


@pytest.mark.parametrize("op", list(KEY_OPS.values()), ids=list(KEY_OPS))
@pytest.mark.parametrize("key", BAD_KEYS, ids=[repr(k) for k in BAD_KEYS])
def test_non_str_key_raises_type_error_naming_it_and_changes_nothing(
    fresh_state: ServerState, key: Any, op: Callable[[ServerState, Any], Any]
) -> None:
    s = fresh_state
    s["a"] = [1]
    s["1"] = "one"  # the text of a bad key must not be touched either
    before = fingerprint(s)
    with pytest.raises(TypeError) as info:
        op(s, key)
    assert isinstance(info.value, ServerStateError)
    assert repr(key) in str(info.value)
    assert fingerprint(s) == before


def test_non_str_key_lock_raises_type_error(fresh_lock: ServerStateLock) -> None:
    with pytest.raises(TypeError) as info:
        fresh_lock[1]  # type: ignore[index]
    assert isinstance(info.value, ServerStateError)


def test_membership_of_a_non_str_is_false(fresh_state: ServerState) -> None:
    fresh_state["1"] = 1
    assert 1 not in fresh_state
    assert None not in fresh_state


@pytest.mark.parametrize("name", ["update", "get", "keys", "transact", "snapshot", "watch", "version"])
def test_assigning_to_a_method_name_raises_type_error_pointing_to_item_syntax(
    fresh_state: ServerState, name: str
) -> None:
    s = fresh_state
    s["a"] = 1
    before = fingerprint(s)
    with pytest.raises(TypeError) as info:
        setattr(s, name, 1)
    assert isinstance(info.value, ServerStateError)
    message = str(info.value)
    assert f"server_state[{name!r}]" in message or f'server_state["{name}"]' in message, message
    with pytest.raises(TypeError):
        delattr(s, name)
    assert fingerprint(s) == before
    assert callable(getattr(s, name))  # the method still works
    s[name] = "item syntax works"
    assert s[name] == "item syntax works"


def test_deleting_a_missing_key_raises_key_error_and_changes_nothing(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"] = 1
    s["gone"] = 1
    del s["gone"]
    before = fingerprint(s)
    gone_version = s.version("gone")
    for key in ("missing", "gone"):
        with pytest.raises(KeyError) as info:
            del s[key]
        assert isinstance(info.value, ServerStateError)
        assert repr(key) in str(info.value)
    with pytest.raises(KeyError):
        del s.missing
    assert fingerprint(s) == before
    assert s.version("gone") == gone_version
    assert s.version("missing") == 0


def test_not_callable_fn_raises_type_error(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"] = 1
    before = fingerprint(s)
    with pytest.raises(TypeError):
        s.update("a", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        s.transact(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        s.watch(["a"], None)  # type: ignore[arg-type]
    assert fingerprint(s) == before


# -- server_state_lock ---------------------------------------------------------------


def test_locks_exist_before_their_key_and_survive_its_delete(
    fresh_state: ServerState, fresh_lock: ServerStateLock
) -> None:
    s = fresh_state
    lock = fresh_lock["count"]
    assert fresh_lock.count is lock
    with lock:  # the seed README's counter
        if "count" not in s:
            s.count = 0
        with fresh_lock["count"]:  # re-entrant
            s.count = s.count + 1
    del s["count"]
    assert fresh_lock["count"] is lock
    assert fresh_lock["other"] is not lock
    with pytest.raises(AttributeError):
        fresh_lock.count = 1


def test_key_lock_excludes_other_threads(fresh_state: ServerState, fresh_lock: ServerStateLock) -> None:
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with fresh_lock["k"]:
            held.set()
            assert release.wait(JOIN)

    t = threading.Thread(target=holder, daemon=True)
    t.start()
    assert held.wait(JOIN)
    assert in_thread(lambda: fresh_lock["k"].acquire(blocking=False)) is False
    assert in_thread(lambda: _try(fresh_lock["other"])) is True
    release.set()
    t.join(JOIN)
    assert in_thread(lambda: _try(fresh_lock["k"])) is True


def _try(lock: Any) -> bool:
    got: bool = lock.acquire(blocking=False)
    if got:
        lock.release()
    return got


# -- no_rerun and force_rerun_bound_sessions --------------------------------------------


def test_no_rerun_is_nestable() -> None:
    state = NoRerun()
    assert not state.active and not no_rerun.active
    with no_rerun:
        assert state.active
        with no_rerun:
            assert state.active
            with state:
                assert no_rerun.active
            assert no_rerun.active
        assert no_rerun.active
    assert not no_rerun.active and not state.active


def test_no_rerun_is_restored_after_an_exception() -> None:
    with pytest.raises(ZeroDivisionError), no_rerun, no_rerun:
        1 / 0  # noqa: B018
    assert not no_rerun.active


def test_no_rerun_is_per_thread() -> None:
    entered = threading.Event()
    leave = threading.Event()
    seen: dict[str, bool] = {}

    def other_holder() -> None:
        with no_rerun:
            entered.set()
            assert leave.wait(JOIN)

    with no_rerun:
        seen["thread started inside"] = in_thread(lambda: no_rerun.active)
        assert no_rerun.active
    t = threading.Thread(target=other_holder, daemon=True)
    t.start()
    assert entered.wait(JOIN)
    seen["here while another thread is inside"] = no_rerun.active
    leave.set()
    t.join(JOIN)
    assert seen == {"thread started inside": False, "here while another thread is inside": False}


def test_writes_inside_no_rerun_still_advance_versions(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"] = 1
    version = s.version("a")
    with no_rerun:
        s["a"] = 2
        s.update("a", lambda n: n + 1)
        s.transact(lambda m: m.set("b", 1))
    assert s["a"] == 3 and s["b"] == 1
    assert s.version("a") > version


def test_force_rerun_advances_the_version_without_changing_the_value(fresh_state: ServerState) -> None:
    s = fresh_state
    model = {"weights": [1]}  # an opaque object stored by reference
    s["model"] = _Box(model)
    box = s["model"]
    version = s.version("model")
    seen: list[Any] = []
    s.watch("model", lambda k, old, new: seen.append((old, new)))
    s.force_rerun("model")
    assert s.version("model") > version
    assert s["model"] is box
    assert seen == [(box, box)]


class _Box:
    def __init__(self, content: Any) -> None:
        self.content = content


def test_force_rerun_of_a_missing_key_raises_key_error(fresh_state: ServerState) -> None:
    with pytest.raises(KeyError) as info:
        fresh_state.force_rerun("missing")
    assert "'missing'" in str(info.value)
    assert fresh_state.version("missing") == 0


def test_force_rerun_inside_no_rerun_raises_and_changes_nothing(fresh_state: ServerState) -> None:
    s = fresh_state
    s["k"] = [1]
    before = fingerprint(s)
    with no_rerun:
        with pytest.raises(RerunSuppressedError) as info:
            s.force_rerun("k")
        with no_rerun, pytest.raises(RerunSuppressedError):
            s.force_rerun("k")
    assert isinstance(info.value, ServerStateError)
    assert isinstance(info.value, RuntimeError)
    assert "'k'" in str(info.value)
    assert fingerprint(s) == before
    s.force_rerun("k")  # after the block it works
    assert s.version("k") > before[2]["k"]


def test_package_force_rerun_bound_sessions_inside_no_rerun_raises() -> None:
    key = "__test_state_api_force_rerun__"
    pkg.server_state[key] = 1
    try:
        version = pkg.server_state.version(key)
        with no_rerun, pytest.raises(RerunSuppressedError):
            pkg.force_rerun_bound_sessions(key)
        assert pkg.server_state.version(key) == version
        pkg.force_rerun_bound_sessions(key)
        assert pkg.server_state.version(key) > version
    finally:
        del pkg.server_state[key]


# -- str-subclass keys mean their string value everywhere -----------------------


class K(str, enum.Enum):  # noqa: UP042 -- the (str, Enum) pattern is the one users write
    COUNT = "count"
    NAME = "name"


def test_str_enum_keys_mean_their_value_everywhere(fresh_state: ServerState) -> None:
    s = fresh_state
    s[K.COUNT] = 2
    assert s["count"] == 2
    assert s[K.COUNT] == 2
    assert K.COUNT in s
    assert s.get(K.COUNT) == 2
    assert s.keys() == ["count"]
    assert type(s.keys()[0]) is str
    s.update(K.COUNT, lambda n: n + 1)
    assert s["count"] == 3
    assert s.snapshot(K.COUNT)[K.COUNT] == 3
    assert s.snapshot()["count"] == 3
    s.transact(lambda m: m.set(K.NAME, m[K.COUNT] * 10))
    assert s["name"] == 30
    assert s.keys() == ["count", "name"]
    assert s.setdefault(K.NAME, 0) == 30
    lock = ServerStateLock(s._locks, _check_key)
    assert lock[K.COUNT] is lock["count"] is lock.count
    del s[K.NAME]
    assert "name" not in s


class S(enum.StrEnum):
    TOTAL = "total"


def test_str_enum_members_are_keys_too(fresh_state: ServerState) -> None:
    fresh_state[S.TOTAL] = 1
    assert fresh_state.total == 1
    assert S.TOTAL in fresh_state


def test_a_transaction_built_outside_the_map_normalises_enum_keys(fresh_state: ServerState) -> None:
    from pyrsistent import pmap

    s = fresh_state
    s["count"] = 1
    s.transact(lambda m: pmap({K.COUNT: 5}))
    assert s.keys() == ["count"]
    assert s["count"] == 5


# -- MISSING is no value ----------------------------------------------------------


def test_missing_is_refused_as_a_value_and_nothing_changes(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"] = 1
    with pytest.raises(ServerStateTypeError, match=r"'b'.*MISSING.*del server_state"):
        s["b"] = MISSING
    with pytest.raises(ServerStateTypeError, match="'a'"):
        s.update("a", lambda v: MISSING)
    with pytest.raises(ServerStateTypeError, match="'c'"):
        s.transact(lambda m: m.set("c", MISSING))
    with pytest.raises(ServerStateTypeError, match="'d'"):
        s.setdefault("d", MISSING)
    assert len(s) == 1
    assert s.keys() == ["a"]
    assert s["a"] == 1


# -- watchers ---------------------------------------------------------------------------


def test_watch_names_a_key_once_however_often_it_is_given(fresh_state: ServerState) -> None:
    s = fresh_state
    calls: list[tuple[str, Any, Any]] = []
    s.watch(["a", "a", "a"], lambda k, old, new: calls.append((k, old, new)))
    s["a"] = 1
    assert calls == [("a", MISSING, 1)]


def test_watch_with_version_tells_commit_order(fresh_state: ServerState) -> None:
    s = fresh_state
    seen: list[tuple[str, int]] = []
    s.watch("a", lambda k, old, new, version: seen.append((new, version)), with_version=True)
    s["a"] = "x"
    s["a"] = "y"
    assert [new for new, _ in seen] == ["x", "y"]
    assert seen[0][1] < seen[1][1] == s.version("a")


def test_watch_with_a_bad_keys_argument_names_what_to_pass(fresh_state: ServerState) -> None:
    with pytest.raises(ServerStateTypeError, match="keys must be a key, a list of keys or None"):
        fresh_state.watch(5, lambda *a: None)  # type: ignore[arg-type]


# -- snapshots of a few keys cost what they ask for, and iterate in keys() order ---------------


def test_snapshot_iterates_in_keys_order(fresh_state: ServerState) -> None:
    s = fresh_state
    names = [f"key{i}" for i in range(50)][::-1]
    for i, name in enumerate(names):
        s[name] = i
    assert list(s.snapshot()) == s.keys() == names
    assert list(s.snapshot("key3", "key1", "nope", "key2")) == ["key3", "key1", "key2"]
    snap = s.snapshot()
    del s["key10"]
    s["new"] = 1
    assert sorted(snap) == sorted(names)  # still the instant it was taken
    assert "new" not in list(snap)


def test_a_named_snapshot_does_not_walk_the_whole_state(fresh_state: ServerState) -> None:
    s = fresh_state
    for i in range(2_000):
        s[f"k{i}"] = i
    s["name"], s["email"] = "ann", "ann@example.org"
    snap = s.snapshot("name", "email")
    # Whatever walks every key of the snapshot's map or of the live state fails.
    snap._state = StoreState(_NoWalk(snap._state.values), snap._state.seq)
    store = s._store
    store.mirror.latest = _Untouchable(store.mirror.latest)  # type: ignore[assignment]
    try:
        assert dict(snap) == {"name": "ann", "email": "ann@example.org"}
        assert len(snap) == 2
    finally:
        store.mirror.latest = dict(dict.items(store.mirror.latest))


def _no_walk(*args: Any) -> Any:
    raise AssertionError("a named snapshot walked every key")


class _NoWalk(PMap):  # type: ignore[type-arg]
    __slots__ = ()

    def __new__(cls, values: PMap) -> _NoWalk:  # type: ignore[type-arg]
        return PMap.__new__(cls, values._size, values._buckets)  # type: ignore[call-arg,no-any-return]

    __iter__ = keys = items = values = iterkeys = iteritems = _no_walk  # type: ignore[assignment]


class _Untouchable(dict):  # type: ignore[type-arg]
    items = __iter__ = keys = values = _no_walk  # type: ignore[assignment]


# -- the facade's own rough edges ---------------------------------------------------------


def test_deepcopy_of_a_snapshot_is_a_plain_mutable_dict(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"] = {"x": [1, 2]}
    s["v"] = pvector([1, 2])
    copied = copy.deepcopy(s.snapshot())
    assert copied == {"a": {"x": [1, 2]}, "v": [1, 2]}
    copied["a"]["x"].append(3)  # mutable, and the state is untouched
    assert s["a"] == {"x": [1, 2]}
    snap = s.snapshot()
    assert copy.copy(snap) is snap


def test_deleting_a_missing_attribute_is_an_attribute_error(fresh_state: ServerState) -> None:
    with pytest.raises(AttributeError, match="'missing'"):
        del fresh_state.missing
    with pytest.raises(KeyError):
        del fresh_state.missing
