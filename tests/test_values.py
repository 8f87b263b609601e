"""The value model (the README's "The value model"): what is stored, what a
read hands out, what counts as a change (exactly what a reader can tell
apart), what freezing costs, and the kinds of values beyond plain lists and
dicts (pyrsistent, deque, Counter, DataFrames...)."""

from __future__ import annotations

import collections
import copy
import datetime
import decimal
import json
import math
import pickle
import random
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyrsistent import PMap, PSet, PVector, pdeque, plist, pmap, pset, pvector
from test_store import run_threads

import server_state._state as state_module
from server_state import (
    FrozenDict,
    FrozenList,
    ReadOnlyValueError,
    ServerState,
    ServerStateError,
    ServerStateTypeError,
    thaw,
)
from server_state._values import content_token, freeze, read_form, unchanged

KEY = "shopping"
UTC = datetime.UTC
CET = zoneinfo.ZoneInfo("Europe/Berlin")
NOON = datetime.datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
Point = collections.namedtuple("Point", "x y")


def fingerprint(s: ServerState) -> tuple[int, dict[str, Any], dict[str, int]]:
    """Everything a user can observe about the store: commit, contents, versions."""
    snap = s.snapshot()
    return snap.seq, {k: thaw(snap[k]) for k in snap}, {k: s.version(k) for k in snap}


def contains_persistent(value: Any) -> bool:
    if isinstance(value, (PMap, PVector, PSet)):
        return True
    if isinstance(value, dict):
        return any(contains_persistent(k) or contains_persistent(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(contains_persistent(v) for v in value)
    return False


def write_twice(s: ServerState, first: Any, second: Any) -> bool:
    """Write ``first`` then ``second``; True if the second write was a change."""
    s[KEY] = first
    version = s.version(KEY)
    s[KEY] = second
    return s.version(KEY) != version


def best_of(fn: Callable[[], Any], repeat: int = 5, number: int = 1) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


# -- writes store a deep immutable copy ----------------------------------------------


@pytest.mark.parametrize(
    ("original", "mutate"),
    [
        ({"a": [1, 2], "b": {"c": 3}}, lambda o: (o["a"].append(9), o["b"].update(c=4), o.update(z=0))),
        ([1, [2, 3], {"x": [4]}], lambda o: (o[1].append(9), o[2]["x"].clear(), o.append(5))),
        ({1, 2, 3}, lambda o: (o.add(4), o.discard(1))),
        (([1, 2], {"k": [3]}), lambda o: (o[0].append(9), o[1]["k"].pop(), o[1].update(n=1))),
    ],
    ids=["dict", "list", "set", "tuple"],
)
def test_assigning_a_container_stores_a_deep_immutable_copy(
    fresh_state: ServerState, original: Any, mutate: Any
) -> None:
    expected = copy.deepcopy(original)
    fresh_state[KEY] = original
    version = fresh_state.version(KEY)

    mutate(original)

    assert original != expected  # the caller's object did change...
    stored = fresh_state[KEY]
    assert thaw(stored) == expected  # ...the stored value did not
    assert fresh_state.version(KEY) == version


def test_reads_are_read_only_list_and_dict_subclasses_all_the_way_down(fresh_state: ServerState) -> None:
    fresh_state[KEY] = {"items": [{"name": "milk"}], "tags": ["a"]}
    value = fresh_state[KEY]
    assert isinstance(value, FrozenDict) and isinstance(value, dict)
    assert isinstance(value["items"], FrozenList) and isinstance(value["items"], list)
    assert isinstance(value["items"][0], FrozenDict)
    fresh_state["plain_list"] = [1, 2]
    assert type(fresh_state["plain_list"]) is FrozenList
    fresh_state["a_set"] = {1, 2}
    assert type(fresh_state["a_set"]) is frozenset
    assert fresh_state["a_set"] == {1, 2}


def test_json_dumps_serialises_read_values(fresh_state: ServerState) -> None:
    data = {"items": [{"name": "milk", "qty": 2}], "done": False, "n": None}
    fresh_state[KEY] = data
    assert json.loads(json.dumps(fresh_state[KEY])) == data
    fresh_state["list"] = [1, "two", [3.5]]
    assert json.dumps(fresh_state["list"]) == json.dumps([1, "two", [3.5]])


def test_concatenation_gives_new_plain_values(fresh_state: ServerState) -> None:
    fresh_state[KEY] = ["milk"]
    fresh_state["d"] = {"a": 1}
    longer = fresh_state[KEY] + ["eggs"]
    assert type(longer) is list and longer == ["milk", "eggs"]
    longer.append("bread")  # a plain list: mutable
    merged = fresh_state["d"] | {"b": 2}
    assert type(merged) is dict and merged == {"a": 1, "b": 2}
    merged["c"] = 3
    assert fresh_state[KEY] == ["milk"]
    assert fresh_state["d"] == {"a": 1}


@pytest.mark.parametrize(
    "make_copy",
    [dict, copy.copy, copy.deepcopy, lambda d: d.copy()],
    ids=["dict()", "copy.copy", "copy.deepcopy", "d.copy()"],
)
def test_copies_of_a_read_dict_are_mutable_plain_dicts(fresh_state: ServerState, make_copy: Any) -> None:
    fresh_state[KEY] = {"a": 1, "inner": [1]}
    version = fresh_state.version(KEY)
    mine = make_copy(fresh_state[KEY])
    assert type(mine) is dict
    mine["a"] = 2
    del mine["inner"]
    assert fresh_state[KEY] == {"a": 1, "inner": [1]}
    assert fresh_state.version(KEY) == version


@pytest.mark.parametrize(
    "make_copy", [list, copy.copy, copy.deepcopy], ids=["list()", "copy.copy", "copy.deepcopy"]
)
def test_copies_of_a_read_list_are_mutable_plain_lists(fresh_state: ServerState, make_copy: Any) -> None:
    fresh_state[KEY] = [1, 2]
    mine = make_copy(fresh_state[KEY])
    assert type(mine) is list
    mine.append(3)
    mine[0] = 0
    assert fresh_state[KEY] == [1, 2]


def test_deepcopy_and_thaw_are_mutable_all_the_way_down(fresh_state: ServerState) -> None:
    fresh_state[KEY] = {"items": [{"name": "milk"}]}
    for mine in (copy.deepcopy(fresh_state[KEY]), thaw(fresh_state[KEY])):
        assert type(mine) is dict
        assert type(mine["items"]) is list
        assert type(mine["items"][0]) is dict
        mine["items"][0]["name"] = "eggs"
        mine["items"].append({})
    assert fresh_state[KEY] == {"items": [{"name": "milk"}]}


def test_pickle_round_trips_read_values(fresh_state: ServerState) -> None:
    fresh_state[KEY] = {"items": [{"name": "milk"}], "n": 1}
    fresh_state["list"] = [[1], {"a": (2, 3)}]
    for key in (KEY, "list"):
        original = fresh_state[key]
        back = pickle.loads(pickle.dumps(original))
        assert back == original
        assert type(back) is type(original)
        with pytest.raises(ReadOnlyValueError):
            back.clear()  # still read-only after the round trip


# -- mutators refuse, naming the key, and change nothing ---------------------------

LIST_MUTATIONS = {
    "append": lambda v: v.append(4),
    "extend": lambda v: v.extend([4]),
    "insert": lambda v: v.insert(0, 4),
    "remove": lambda v: v.remove(1),
    "pop": lambda v: v.pop(),
    "pop(0)": lambda v: v.pop(0),
    "clear": lambda v: v.clear(),
    "sort": lambda v: v.sort(reverse=True),
    "reverse": lambda v: v.reverse(),
    "setitem": lambda v: v.__setitem__(0, 4),
    "setslice": lambda v: v.__setitem__(slice(0, 1), []),
    "delitem": lambda v: v.__delitem__(0),
    "delslice": lambda v: v.__delitem__(slice(None)),
}


def _iadd(v: Any) -> None:
    v += [4]


def _imul(v: Any) -> None:
    v *= 2


def _ior(v: Any) -> None:
    v |= {"z": 1}


LIST_MUTATIONS["+="] = _iadd
LIST_MUTATIONS["*="] = _imul

DICT_MUTATIONS = {
    "setitem": lambda d: d.__setitem__("z", 1),
    "setitem existing": lambda d: d.__setitem__("a", 2),
    "delitem": lambda d: d.__delitem__("a"),
    "clear": lambda d: d.clear(),
    "pop": lambda d: d.pop("a"),
    "pop default": lambda d: d.pop("missing", None),
    "popitem": lambda d: d.popitem(),
    "setdefault": lambda d: d.setdefault("z", 1),
    "update": lambda d: d.update({"z": 1}),
    "update kwargs": lambda d: d.update(z=1),
    "|=": _ior,
}


def assert_refusal_names_key(exc: BaseException, key: str) -> None:
    assert isinstance(exc, TypeError)
    assert isinstance(exc, ServerStateError)
    message = str(exc)
    assert repr(key) in message, message
    assert "assign" in message, message
    assert "update(" in message, message


@pytest.mark.parametrize("mutation", list(LIST_MUTATIONS.values()), ids=list(LIST_MUTATIONS))
def test_every_list_mutator_refuses_and_changes_nothing(fresh_state: ServerState, mutation: Any) -> None:
    fresh_state[KEY] = [1, 2, 3]
    fresh_state["other"] = {"x": [1]}
    before = fingerprint(fresh_state)
    value = fresh_state[KEY]
    with pytest.raises(ReadOnlyValueError) as info:
        mutation(value)
    assert_refusal_names_key(info.value, KEY)
    assert value == [1, 2, 3]  # the read value itself is intact
    assert fingerprint(fresh_state) == before


@pytest.mark.parametrize("mutation", list(DICT_MUTATIONS.values()), ids=list(DICT_MUTATIONS))
def test_every_dict_mutator_refuses_and_changes_nothing(fresh_state: ServerState, mutation: Any) -> None:
    fresh_state[KEY] = {"a": 1, "b": [2]}
    before = fingerprint(fresh_state)
    value = fresh_state[KEY]
    with pytest.raises(ReadOnlyValueError) as info:
        mutation(value)
    assert_refusal_names_key(info.value, KEY)
    assert value == {"a": 1, "b": [2]}
    assert fingerprint(fresh_state) == before


def test_nested_values_refuse_naming_the_outer_key(fresh_state: ServerState) -> None:
    fresh_state[KEY] = {"items": [{"name": "milk"}]}
    before = fingerprint(fresh_state)
    with pytest.raises(ReadOnlyValueError) as info:
        fresh_state[KEY]["items"].append({})
    assert_refusal_names_key(info.value, KEY)
    with pytest.raises(ReadOnlyValueError) as info:
        fresh_state[KEY]["items"][0]["name"] = "eggs"
    assert_refusal_names_key(info.value, KEY)
    assert fingerprint(fresh_state) == before


def test_value_assigned_from_another_key_refuses_naming_its_own_key(fresh_state: ServerState) -> None:
    # `server_state.backup = server_state.items` is a plain user pattern; a
    # mutation of `server_state.backup` must not blame 'items'.
    fresh_state["items"] = [1, 2]
    fresh_state["backup"] = fresh_state["items"]
    with pytest.raises(ReadOnlyValueError) as info:
        fresh_state["backup"].append(3)
    assert_refusal_names_key(info.value, "backup")


def test_frozen_list_and_dict_built_directly_refuse_with_a_type_error() -> None:
    # FrozenList/FrozenDict are public names; one built by hand must refuse a
    # mutation like a read one does (a TypeError that says what to do).
    for value, mutate in ((FrozenList([1]), lambda v: v.append(2)), (FrozenDict(a=1), lambda d: d.clear())):
        with pytest.raises(TypeError) as info:
            mutate(value)
        assert "update(" in str(info.value)


# -- pyrsistent values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "read_type", "plain"),
    [
        (pvector([1, 2, 3]), FrozenList, [1, 2, 3]),
        (pmap({"a": 1, "b": pvector([2])}), FrozenDict, {"a": 1, "b": [2]}),
        (pset([1, 2]), frozenset, {1, 2}),
    ],
    ids=["pvector", "pmap", "pset"],
)
def test_pyrsistent_values_are_stored_as_is_and_read_as_plain_once_per_version(
    fresh_state: ServerState, stored: Any, read_type: type, plain: Any
) -> None:
    fresh_state[KEY] = stored
    seen: list[Any] = []

    def fn(value: Any) -> Any:
        seen.append(value)
        return value

    fresh_state.update(KEY, fn)
    assert seen and seen[0] is stored  # update's fn gets the stored object itself

    first = fresh_state[KEY]
    assert type(first) is read_type
    assert thaw(first) == plain
    assert not contains_persistent(first)
    assert fresh_state[KEY] is first  # built once for this version
    assert fresh_state.get(KEY) is first
    assert fresh_state.peek(KEY) is first
    assert fresh_state.snapshot()[KEY] is first

    fresh_state.update(
        KEY,
        lambda v: (
            v.set(0, 9) if isinstance(v, PVector) else v.set("c", 9) if isinstance(v, PMap) else v.add(9)
        ),
    )
    second = fresh_state[KEY]
    assert second is not first
    assert fresh_state[KEY] is second
    assert thaw(first) == plain  # the earlier read did not change


def test_pyrsistent_read_form_refuses_mutation_naming_the_key(fresh_state: ServerState) -> None:
    fresh_state[KEY] = pmap({"items": pvector([1])})
    before = fingerprint(fresh_state)
    with pytest.raises(ReadOnlyValueError) as info:
        fresh_state[KEY]["items"].append(2)
    assert_refusal_names_key(info.value, KEY)
    assert fingerprint(fresh_state) == before


@pytest.mark.parametrize(
    "value",
    [
        [pvector([1]), {"m": pmap({"a": 1})}],
        {"v": pvector([1, 2])},
        (pvector([1]), 2),
        [(pmap({"a": 1}),)],
    ],
    ids=["list", "dict", "tuple", "tuple-in-list"],
)
def test_pyrsistent_values_inside_plain_containers_are_never_read_raw(
    fresh_state: ServerState, value: Any
) -> None:
    # The value model (README): reads never hand out raw pyrsistent values (Streamlit
    # renders them as a repr string and crashes on a PVector of options).
    fresh_state[KEY] = value
    read = fresh_state[KEY]
    assert not contains_persistent(read), read
    assert json.loads(json.dumps(read)) == json.loads(json.dumps(thaw(value)))


# -- change detection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (1, 1),
        ("text", "".join(["te", "xt"])),
        (2.5, 2.5),
        ([1, [2, {"a": 3}]], [1, [2, {"a": 3}]]),
        ({"a": [1], "b": {"c": None}}, {"a": [1], "b": {"c": None}}),
        ((1, (2, 3)), (1, (2, 3))),
        ({1, 2}, {2, 1}),
        (frozenset({"x"}), {"x"}),
        (10**30, 10**30 + 0),
    ],
)
def test_equal_writes_of_new_objects_do_not_advance_the_version(
    fresh_state: ServerState, first: Any, second: Any
) -> None:
    fresh_state[KEY] = first
    version = fresh_state.version(KEY)
    fresh_state[KEY] = copy.deepcopy(second)
    assert fresh_state.version(KEY) == version
    fresh_state[KEY] = thaw(fresh_state[KEY])  # writing back what was read
    assert fresh_state.version(KEY) == version


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (1, 1.0),
        (1, True),
        (True, 1),
        (0, False),
        ([1], [1.0]),
        ([1], [True]),
        ({"a": 1}, {"a": True}),
        ((1,), (1.0,)),
        ([1, 2], (1, 2)),
        ([1, 2], [2, 1]),
        ({"a": 1}, {"a": 2}),
        (None, 0),
    ],
)
def test_writes_of_equal_values_of_another_type_are_changes(
    fresh_state: ServerState, first: Any, second: Any
) -> None:
    fresh_state[KEY] = first
    version = fresh_state.version(KEY)
    fresh_state[KEY] = second
    assert fresh_state.version(KEY) > version
    assert repr(thaw(fresh_state[KEY])) == repr(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({1: "x"}, {True: "x"}),
        ({1: "x"}, {1.0: "x"}),
        ({"outer": {1: "x"}}, {"outer": {True: "x"}}),
        ({1}, {1.0}),
        ({1}, {True}),
    ],
    ids=["dict-key-bool", "dict-key-float", "nested-dict-key", "set-float", "set-bool"],
)
def test_writes_changing_the_type_of_dict_keys_or_set_items_are_changes(
    fresh_state: ServerState, first: Any, second: Any
) -> None:
    # `True` over `1` is a change at the top level and inside lists and dict
    # values; json.dumps shows the difference ({"1": ...} vs {"true": ...}).
    fresh_state[KEY] = first
    version = fresh_state.version(KEY)
    fresh_state[KEY] = second
    assert fresh_state.version(KEY) > version
    assert repr(thaw(fresh_state[KEY])) == repr(second)


class Opaque:
    """An object the store cannot freeze; equal to everything."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_opaque_objects_compare_by_identity(fresh_state: ServerState) -> None:
    first = Opaque()
    fresh_state[KEY] = first
    version = fresh_state.version(KEY)
    assert fresh_state[KEY] is first  # stored by reference

    fresh_state[KEY] = first
    assert fresh_state.version(KEY) == version

    second = Opaque()
    fresh_state[KEY] = second
    assert fresh_state.version(KEY) > version
    assert fresh_state[KEY] is second


def test_pyrsistent_values_compare_by_identity(fresh_state: ServerState) -> None:
    first = pmap({"a": 1})
    fresh_state[KEY] = first
    version = fresh_state.version(KEY)
    fresh_state[KEY] = first
    assert fresh_state.version(KEY) == version
    fresh_state.update(KEY, lambda m: m.set("a", 1))  # pmap's no-op update returns the same object
    assert fresh_state.version(KEY) == version
    fresh_state[KEY] = pmap({"a": 1})  # equal, but another object
    assert fresh_state.version(KEY) > version
    fresh_state["v"] = pvector([1, 2])
    v_version = fresh_state.version("v")
    fresh_state["v"] = pvector([1, 2])
    assert fresh_state.version("v") > v_version


def test_thaw_gives_plain_mutable_values() -> None:
    value = {"a": FrozenList([1]), "p": pvector([pmap({"x": 1})]), "s": pset([1]), "t": (1, [2])}
    thawed = thaw(value)
    assert thawed == {"a": [1], "p": [{"x": 1}], "s": {1}, "t": (1, [2])}
    assert type(thawed["a"]) is list
    assert type(thawed["p"]) is list and type(thawed["p"][0]) is dict
    assert type(thawed["s"]) is set


# -- FrozenList / FrozenDict built by users, copies across keys, thaw -------------------


def test_frozen_list_and_dict_built_by_users_can_be_assigned_and_pickled(fresh_state: ServerState) -> None:
    inner = [2]
    fl = FrozenList([1, inner])
    fd = FrozenDict({"a": inner}, b=3)
    inner.append(99)  # built from the user's list: a read-only copy, not an alias
    assert fl == [1, [2]] and fd == {"a": [2], "b": 3}
    for built in (fl, fd):
        back = pickle.loads(pickle.dumps(built))
        assert back == built and type(back) is type(built)
    fresh_state["fl"] = fl
    fresh_state["fd"] = fd
    assert fresh_state["fl"] == [1, [2]] and fresh_state["fd"] == {"a": [2], "b": 3}
    with pytest.raises(ReadOnlyValueError) as info:
        fresh_state["fl"][1].append(3)
    assert_refusal_names_key(info.value, "fl")
    with pytest.raises(ReadOnlyValueError) as info:
        fresh_state["fd"]["a"].append(3)
    assert_refusal_names_key(info.value, "fd")
    with pytest.raises(TypeError):
        fl.__init__([7])  # re-initialising is a mutation too
    assert fl == [1, [2]]
    assert FrozenDict.fromkeys(["x", "y"], 0) == {"x": 0, "y": 0}


@pytest.mark.parametrize(
    ("make", "mutate"),
    [
        (lambda a: list(a), lambda b: b[0].__setitem__("n", 2)),
        (lambda a: [*a, {"n": 9}], lambda b: b[0].__setitem__("n", 2)),
        (lambda a: {"rows": a}, lambda b: b["rows"][0].clear()),
        (lambda a: (a[0], 1), lambda b: b[0].pop("n")),
        (lambda a: [[a[0]]], lambda b: b[0][0].update(n=3)),
        (lambda a: a, lambda b: b[1]["tags"].append("x")),
        (lambda a: pvector(a), lambda b: b[1]["tags"].append("x")),
    ],
    ids=["list()", "list + new", "in a dict", "in a tuple", "deeper", "as is, deep", "in a pvector"],
)
def test_values_copied_from_another_key_refuse_naming_the_key_they_were_assigned_to(
    fresh_state: ServerState, make: Any, mutate: Any
) -> None:
    fresh_state["a"] = [{"n": 1}, {"tags": ["t"]}]
    fresh_state["b"] = make(fresh_state["a"])
    with pytest.raises(ReadOnlyValueError) as info:
        mutate(fresh_state["b"])
    assert_refusal_names_key(info.value, "b")
    with pytest.raises(ReadOnlyValueError) as info:
        fresh_state["a"][0]["n"] = 5
    assert_refusal_names_key(info.value, "a")  # the original still names its own key


def test_thaw_goes_inside_namedtuples_and_tuple_subclasses(fresh_state: ServerState) -> None:
    Msg = collections.namedtuple("Msg", "user tags")
    fresh_state[KEY] = [Msg("amy", ["a", "b"])]
    mine = thaw(fresh_state[KEY])
    assert type(mine[0]) is Msg
    assert type(mine[0].tags) is list
    mine[0].tags.append("c")
    assert fresh_state[KEY][0].tags == ["a", "b"]
    assert type(copy.deepcopy(fresh_state[KEY])[0].tags) is list


# -- equal by == but visibly different: a change ------------------------------------

VISIBLY_DIFFERENT = {
    "dict order": ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    "sorted leaderboard": ({"bob": 3, "amy": 5}, dict(sorted({"bob": 3, "amy": 5}.items()))),
    "decimal exponent": (decimal.Decimal("2.5"), decimal.Decimal("2.50")),
    "decimal sign of zero": (decimal.Decimal("0"), decimal.Decimal("-0")),
    "timezone of a datetime": (NOON, NOON.astimezone(CET)),
    "fold of a datetime": (
        datetime.datetime(2024, 10, 27, 2, 30, tzinfo=CET),
        datetime.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=CET),
    ),
    "fold of a naive datetime": (datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 1, fold=1)),
    "timezone of a time": (
        datetime.time(12, tzinfo=UTC),
        datetime.time(12, tzinfo=datetime.timezone(datetime.timedelta(0), "GMT")),
    ),
    "negative zero": (0.0, -0.0),
    "negative zero, complex": (complex(0.0, 1.0), complex(-0.0, 1.0)),
    "empty ranges": (range(0), range(5, 5)),
    "decimals in a list": (
        [decimal.Decimal("1.0"), decimal.Decimal("2")],
        [decimal.Decimal("1.00"), decimal.Decimal("2")],
    ),
    "negative zero in a list": ([1.0, 0.0, 3.0], [1.0, -0.0, 3.0]),
    "negative zero in a mixed list": ([1, "a", 0.0], [1, "a", -0.0]),
    "dict value": ({"price": decimal.Decimal("2.5")}, {"price": decimal.Decimal("2.50")}),
    "dict key order inside a list": ([{"a": 1, "b": 2}], [{"b": 2, "a": 1}]),
    "nested deep": ({"x": [[{"t": NOON}]]}, {"x": [[{"t": NOON.astimezone(CET)}]]}),
    "tuple item": ((1, 0.0), (1, -0.0)),
    "namedtuple item": (Point(1, decimal.Decimal("1")), Point(1, decimal.Decimal("1.0"))),
    "dict key -0.0": ({0.0: "x"}, {-0.0: "x"}),
    "set item -0.0": ({0.0, 1.0}, {-0.0, 1.0}),
    "set item exponent": ({decimal.Decimal("1.0")}, {decimal.Decimal("1")}),
    "set of tuples": ({(1, 0.0)}, {(1, -0.0)}),
    "mixed set int and bool": ({0, True}, {False, 1}),
}


@pytest.mark.parametrize(("first", "second"), list(VISIBLY_DIFFERENT.values()), ids=list(VISIBLY_DIFFERENT))
def test_writes_equal_by_eq_but_visibly_different_are_changes(
    fresh_state: ServerState, first: Any, second: Any
) -> None:
    assert first == second  # what made them count as "no change" before
    assert write_twice(fresh_state, first, second)
    assert repr(thaw(fresh_state[KEY])) == repr(second)


def test_a_reordered_dict_reads_back_in_the_new_order(fresh_state: ServerState) -> None:
    scores = {"amy": 5, "bob": 9, "cat": 7}
    fresh_state["board"] = scores
    fresh_state["board"] = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    assert list(fresh_state["board"]) == ["bob", "cat", "amy"]
    assert json.dumps(fresh_state["board"]) == '{"bob": 9, "cat": 7, "amy": 5}'


def test_the_same_instant_in_another_timezone_reads_back_in_that_timezone(fresh_state: ServerState) -> None:
    fresh_state["t"] = NOON
    fresh_state["t"] = NOON.astimezone(CET)
    assert fresh_state["t"].tzinfo is CET
    assert fresh_state["t"].hour == 13


# -- equal values: no change -----------------------------------------------------------

NAN = float("nan")

EQUAL_AGAIN: dict[str, Callable[[], Any]] = {
    "nan": lambda: float("nan"),
    "nan computed": lambda: float("inf") - float("inf"),
    "nan in a list": lambda: [1.0, float("nan")],
    "nan in a dict": lambda: {"avg": float("nan")},
    "nan in a tuple": lambda: (float("nan"), 1),
    "nan in a set": lambda: frozenset({float("nan"), 1.5}),
    "decimal": lambda: decimal.Decimal("2.50"),
    "datetime in CET": lambda: datetime.datetime(2024, 1, 15, 13, tzinfo=CET),
    "np.float64": lambda: np.float64(2.5),
    "np.float64 nan": lambda: np.float64("nan"),
    "np.float64 mean": lambda: pd.Series([1.0, 2.0, 4.0]).mean(),
    "np.float32": lambda: np.float32(0.1),
    "np.int64": lambda: np.int64(7),
    "np.bool_": lambda: np.bool_(True),
    "np.str_": lambda: np.str_("text"),
    "np.datetime64": lambda: np.datetime64("2024-01-15T12:00"),
    # With a unit: numpy 2.5 deprecates the generic one (a bare "NaT"), at construction.
    "np.datetime64 NaT": lambda: np.datetime64("NaT", "s"),
    "pd.Timestamp": lambda: pd.Timestamp("2024-01-15 12:00"),
    "pd.Timestamp tz-aware": lambda: pd.Timestamp("2024-01-15 12:00", tz="Europe/Berlin"),
    "pd.Timedelta": lambda: pd.Timedelta("1h"),
    "numpy scalars in a list": lambda: [np.float64(1.5), np.int64(2), np.bool_(False), np.str_("x")],
    "numpy scalars in a dict": lambda: {
        "mean": np.float64(1.5),
        "n": np.int64(3),
        "at": pd.Timestamp("2024-01-01"),
    },
    "numpy scalars in a tuple": lambda: (np.float64(1.5), pd.Timedelta("1s")),
    "many np.float64": lambda: [np.float64(i / 3) for i in range(300)],
    "many np.int64": lambda: [np.int64(i) for i in range(300)],
    "many floats with nan": lambda: [i / 3 if i % 7 else float("nan") for i in range(300)],
    "rows": lambda: [{"id": i, "x": i / 3, "tags": [str(i)]} for i in range(200)],
    "mixed list": lambda: [1, "a", None, 2.5, (1, 2), {"x": [1.5]}, decimal.Decimal("1.10"), NOON],
    "nested tuples": lambda: [("alice", "hi", 1.5), ("bob", "yo", float("nan"))],
    "frozenset mixed": lambda: frozenset({1, "a", (2, 3.5)}),
    "empty containers": lambda: [[], {}, (), frozenset()],
}


@pytest.mark.parametrize("make", list(EQUAL_AGAIN.values()), ids=list(EQUAL_AGAIN))
def test_equal_values_written_again_are_not_a_change(
    fresh_state: ServerState, make: Callable[[], Any]
) -> None:
    first, second = make(), make()
    assert first is not second or isinstance(first, (bool, np.bool_))
    assert not write_twice(fresh_state, first, second)
    version = fresh_state.version(KEY)
    fresh_state[KEY] = thaw(fresh_state[KEY])  # writing back what was read
    assert fresh_state.version(KEY) == version


NOT_THE_SAME_TYPE = {
    "int vs np.int64": (1, np.int64(1)),
    "float vs np.float64": (1.5, np.float64(1.5)),
    "np.float64 vs np.float32": (np.float64(0.5), np.float32(0.5)),
    "np.int64 vs np.int32": (np.int64(1), np.int32(1)),
    "bool vs np.bool_": (True, np.bool_(True)),
    "str vs np.str_": ("a", np.str_("a")),
    "datetime vs pd.Timestamp": (datetime.datetime(2024, 1, 1), pd.Timestamp("2024-01-01")),
    "np.datetime64 units": (np.datetime64("2024-01-01"), np.datetime64("2024-01-01T00:00")),
    "in a list": ([1, 2], [np.int64(1), 2]),
    "int vs float in a dict": ({"a": 1}, {"a": 1.0}),
    "pd.Timestamp tz": (
        pd.Timestamp("2024-01-01 12:00", tz="UTC"),
        pd.Timestamp("2024-01-01 13:00", tz="Europe/Berlin"),
    ),
}


@pytest.mark.parametrize(("first", "second"), list(NOT_THE_SAME_TYPE.values()), ids=list(NOT_THE_SAME_TYPE))
def test_equal_values_of_another_type_or_unit_are_changes(
    fresh_state: ServerState, first: Any, second: Any
) -> None:
    assert first == second
    assert write_twice(fresh_state, first, second)
    assert repr(thaw(fresh_state[KEY])) == repr(second)


def test_a_different_value_is_a_change_wherever_it_is(fresh_state: ServerState) -> None:
    base = [{"id": i, "x": i / 3, "tags": [str(i)]} for i in range(300)]
    for path in ((0, "x"), (299, "x"), (150, "id"), (7, "tags", 0)):
        changed = copy.deepcopy(base)
        holder: Any = changed
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = holder[path[-1]] + ("!" if isinstance(holder[path[-1]], str) else 1)
        assert write_twice(fresh_state, base, changed), path
        assert thaw(fresh_state[KEY]) == changed


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ([[1, 2], [3]], [[1], [2, 3]]),
        ([{"a": 1, "b": 2}, {}], [{"a": 1}, {"b": 2}]),
        ([{"a": 1}, {"b": 2}], [{"b": 1}, {"a": 2}]),
        ([(1, "a"), (2, "b")], [(1, "b"), (2, "a")]),
        ([1, "a", 2.5, None], [1, "a", 2.5, 0]),
        ([1, "a", 2.5], ["a", 1, 2.5]),
        ([float("nan"), 1.0], [1.0, float("nan")]),
    ],
)
def test_values_with_the_same_parts_in_another_arrangement_are_changes(
    fresh_state: ServerState, first: Any, second: Any
) -> None:
    assert write_twice(fresh_state, first, second)
    assert repr(thaw(fresh_state[KEY])) == repr(second)


def test_values_not_importing_numpy_never_import_it() -> None:
    # numpy and pandas may not be importable in every app: comparing and
    # freezing plain values must not import them.
    code = (
        "import sys, server_state\n"
        "s = server_state.ServerState()\n"
        "for v in ([1.5, {'x': 2}], {'a': (1, None)}, 2.5, float('nan')):\n"
        "    s['a'] = v; s['a'] = server_state.thaw(s['a'])\n"
        "assert 'numpy' not in sys.modules and 'pandas' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- equal writes of large lists are C-speed ----------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: list(range(10**6)),
        lambda: [i / 7 for i in range(10**6)],
        lambda: [str(i) for i in range(10**6)],
        lambda: [{"id": i, "name": f"user{i}"} for i in range(10**5)],
    ],
    ids=["1M ints", "1M floats", "1M strs", "100k dicts"],
)
def test_an_equal_write_of_a_large_list_costs_about_a_c_comparison(make: Callable[[], Any]) -> None:
    old, new = freeze(make(), KEY), freeze(make(), KEY)
    assert unchanged(old, new)
    plain = best_of(lambda: old == new, repeat=3)
    exact = best_of(lambda: unchanged(old, new), repeat=3)
    # Was 30-50x (a Python call per element); C-speed passes are a few times ==.
    assert exact < 12 * plain + 0.005, (exact, plain)


# -- appending to a large list of frozen items -------------------------------------------

Msg = collections.namedtuple("Msg", "user text")


@pytest.mark.parametrize(
    "make",
    [
        lambda i: ("user", f"text {i}"),
        lambda i: Msg("user", f"text {i}"),
        lambda i: frozenset({i, "x"}),
        lambda i: {"user": "u", "text": str(i)},
        lambda i: [i, "x"],
    ],
    ids=["tuples", "namedtuples", "frozensets", "dicts", "lists"],
)
def test_appending_to_a_large_list_costs_about_the_same_whatever_the_items(
    make: Callable[[int], Any],
) -> None:
    n = 100_000
    ints = freeze(list(range(n)), KEY)
    items = freeze([make(i) for i in range(n)], KEY)
    m = make(-1)

    # `stored + [m]` as apps write it (server_state.msgs = server_state.msgs + [m]).
    def append_ints() -> Any:
        return freeze(ints + [n], KEY, previous=ints)  # noqa: RUF005

    def append_items() -> Any:
        return freeze(items + [m], KEY, previous=items)  # noqa: RUF005

    new = append_items()
    assert type(new) is FrozenList and len(new) == n + 1 and new[-1] == m
    assert all(a is b for a, b in zip(new, items, strict=False))  # old items reused as they are
    assert best_of(append_items) < 4 * best_of(append_ints) + 0.002


def test_previous_spares_only_identical_items_and_the_new_ones_are_frozen() -> None:
    old = freeze([("a", 1), ("b", 2)], KEY)
    inner = [3]
    new = freeze([*old, ("c", inner), [4]], KEY, previous=old)
    inner.append(99)
    assert new == [("a", 1), ("b", 2), ("c", [3]), [4]]
    assert type(new[2][1]) is FrozenList and type(new[3]) is FrozenList
    with pytest.raises(ReadOnlyValueError):
        new[3].append(5)
    # Prepending, deleting, inserting: the items still shared are not rebuilt.
    for changed in ([("z", [0]), *old], [old[1]], [old[0], ("m", [1]), old[1]]):
        out = freeze(changed, KEY, previous=old)
        assert out == thaw(changed)
        assert all(type(x[1]) is not list for x in out)
        assert all(any(x is y for y in old) for x in out if x in old)


@pytest.mark.parametrize("previous", [None, "MISSING", 5], ids=["None", "sentinel", "int"])
def test_freeze_without_a_usable_previous_freezes_everything(previous: Any) -> None:
    inner = [1]
    out = freeze([inner, {"a": inner}], KEY, previous=previous)
    inner.append(2)
    assert out == [[1], {"a": [1]}]


def test_a_plain_previous_is_not_trusted() -> None:
    # Only what freeze returned is known to be frozen: a plain list passed as
    # `previous` must not let its mutable items through.
    inner = [1]
    plain = [inner]
    out = freeze([inner], KEY, previous=plain)
    inner.append(2)
    assert out == [[1]]
    d_inner = [1]
    out_d = freeze({"a": d_inner}, KEY, previous={"a": d_inner})
    d_inner.append(2)
    assert out_d == {"a": [1]}


def test_dict_entries_unchanged_since_previous_are_kept_and_changed_ones_frozen() -> None:
    old = freeze({"room": ("a", "b"), "msgs": [("u", "hi")] * 3}, KEY)
    new = freeze({**old, "msgs": [*old["msgs"], ("u", ["x"])]}, KEY, previous=old)
    assert new["room"] is old["room"]
    assert new["msgs"][:3] == old["msgs"] and all(
        a is b for a, b in zip(new["msgs"], old["msgs"], strict=False)
    )
    assert type(new["msgs"][3][1]) is FrozenList


# -- pyrsistent values are frozen inside ---------------------------------------------


def test_a_plain_list_inside_a_pmap_is_not_aliased(fresh_state: ServerState) -> None:
    members = ["amy"]
    fresh_state["room"] = pmap({"members": members, "topic": "x"})
    members.append("bob")
    assert fresh_state["room"] == {"members": ["amy"], "topic": "x"}
    with pytest.raises(ReadOnlyValueError) as info:
        fresh_state["room"]["members"].append("cat")
    assert repr("room") in str(info.value)


@pytest.mark.parametrize(
    ("build", "mutate"),
    [
        (lambda inner: pvector([inner]), lambda inner: inner.append(9)),
        (lambda inner: pvector([pmap({"a": inner})]), lambda inner: inner.append(9)),
        (lambda inner: pmap({"v": pvector([{"x": inner}])}), lambda inner: inner.append(9)),
        (lambda inner: plist([1, inner]), lambda inner: inner.append(9)),
        (lambda inner: pdeque([inner, 2], maxlen=5), lambda inner: inner.append(9)),
        (lambda inner: pvector([(1, inner)]), lambda inner: inner.append(9)),
    ],
    ids=["pvector", "pmap-in-pvector", "dict-in-pvector-in-pmap", "plist", "pdeque", "tuple-in-pvector"],
)
def test_plain_containers_inside_pyrsistent_values_are_frozen(
    fresh_state: ServerState, build: Callable[[Any], Any], mutate: Callable[[Any], Any]
) -> None:
    inner = [1]
    value = build(inner)
    before = thaw(value)
    fresh_state[KEY] = value
    mutate(inner)
    assert thaw(fresh_state[KEY]) == before
    assert thaw(fresh_state.peek(KEY)) == before


def test_a_pyrsistent_value_with_nothing_to_freeze_is_stored_as_the_same_object() -> None:
    for value in (pvector([1, "a", (2, 3)]), pmap({"a": 1, "b": pvector([2])}), plist([1, 2])):
        assert freeze(value, KEY) is value
    big = freeze(pvector(range(5000)), KEY)
    assert freeze(big, KEY) is big
    assert freeze(big.append(1), KEY, previous=big) is not big


def test_update_appending_to_a_pvector_freezes_only_the_new_item(fresh_state: ServerState) -> None:
    fresh_state["log"] = pvector(range(3000))
    inner = ["x"]
    fresh_state.update("log", lambda v: v.append(inner))
    inner.append("y")
    assert fresh_state["log"][-1] == ["x"]
    with pytest.raises(ReadOnlyValueError):
        fresh_state["log"][-1].append("z")


@pytest.mark.parametrize("n", [10, 100, 2000, 40_000])
def test_freezing_a_changed_pvector_against_previous_finds_every_new_item(n: int) -> None:
    old = freeze(pvector([(i, "x") for i in range(n)]), KEY)
    edits: list[Callable[[Any], Any]] = [
        lambda v: v.append([1]),
        lambda v: v.set(0, [2]),
        lambda v: v.set(len(v) // 2, [3]),
        lambda v: v.extend([[4]] * 40),
        lambda v: v.delete(0).append([5]),
        lambda v: v.evolver().set(len(v) - 1, [6]).persistent(),
    ]
    for edit in edits:
        new = freeze(edit(old), KEY, previous=old)
        assert isinstance(new, PVector)
        assert not any(type(x) is list for x in new), edit
        assert thaw(new) == thaw(edit(old))


def test_appending_to_a_large_pvector_costs_the_same_at_any_size() -> None:
    def cost(n: int) -> float:
        v = freeze(pvector(range(n)), KEY)
        m = {"text": "hi"}
        return best_of(lambda: freeze(v.append(m), KEY, previous=v), repeat=5, number=200)

    small, large = cost(1_000), cost(100_000)
    assert large < 2 * small + 5e-6, (small, large)
    assert large < 50e-6, large


def test_a_large_pmap_keeps_working_after_freezing() -> None:
    m = freeze(pmap({f"k{i}": i for i in range(5000)}), KEY)
    m2 = freeze(m.set("k1", [1]).remove("k2").set("new", {"a": 1}), KEY, previous=m)
    assert m2["k1"] == [1] and type(m2["k1"]) is FrozenList
    assert "k2" not in m2 and m2["new"] == {"a": 1} and len(m2) == 5000
    assert m2.set("k3", 4) is not m2 and m2.discard("nope") is m2
    assert pickle.loads(pickle.dumps(m2)) == m2
    assert m2 == pmap(dict(m2.items()))
    m3 = freeze(m.set("k1", 5), KEY, previous=m)
    assert m3["k1"] == 5 and hash(m3) == hash(pmap(dict(m3.items())))
    assert read_form(m2, KEY)["k1"] == [1]


# -- cyclic or very deep values -----------------------------------------------------------


def _cyclic_list() -> Any:
    v: list[Any] = [1]
    v.append(v)
    return v


def _cyclic_dict() -> Any:
    d: dict[str, Any] = {}
    d["self"] = {"again": d}
    return d


def _deep(n: int) -> Any:
    v: Any = []
    for _ in range(n):
        v = [v]
    return v


@pytest.mark.parametrize(
    "make",
    [_cyclic_list, _cyclic_dict, lambda: _deep(5000), lambda: pvector([_deep(5000)])],
    ids=["cyclic list", "cyclic dict", "deep list", "deep in pvector"],
)
def test_a_cyclic_or_too_deep_value_is_refused_naming_the_key(fresh_state: ServerState, make: Any) -> None:
    fresh_state["other"] = 1
    before = fingerprint(fresh_state)
    with pytest.raises(ServerStateTypeError) as info:
        fresh_state["tree"] = make()
    message = str(info.value)
    assert repr("tree") in message and "nested too deep or contains itself" in message
    assert info.value.key == "tree"
    assert fingerprint(fresh_state) == before
    assert "tree" not in fresh_state


@pytest.mark.parametrize("depth", [100, 250])
def test_a_value_nested_a_few_hundred_levels_is_fine(fresh_state: ServerState, depth: int) -> None:
    fresh_state["tree"] = _deep(depth)
    assert not write_twice(fresh_state, _deep(depth), _deep(depth))
    assert thaw(fresh_state["tree"]) == _deep(depth)


# -- deque, bytearray, Counter, defaultdict, OrderedDict -------------------------------------


def test_a_deque_is_stored_read_only_keeping_order_and_maxlen(fresh_state: ServerState) -> None:
    original = collections.deque([1, 2, 3], maxlen=3)
    fresh_state[KEY] = original
    original.append(4)
    value = fresh_state[KEY]
    assert value == [1, 2, 3] and value.maxlen == 3 and isinstance(value, list)
    assert json.dumps(value) == "[1, 2, 3]"
    for mutate in (
        lambda d: d.append(4),
        lambda d: d.appendleft(0),
        lambda d: d.popleft(),
        lambda d: d.rotate(1),
        lambda d: d.extendleft([0]),
    ):
        with pytest.raises(ReadOnlyValueError) as info:
            mutate(value)
        assert repr(KEY) in str(info.value)
    mine = thaw(value)
    assert type(mine) is collections.deque and mine.maxlen == 3
    mine.append(4)
    assert list(mine) == [2, 3, 4] and fresh_state[KEY] == [1, 2, 3]
    assert pickle.loads(pickle.dumps(value)).maxlen == 3
    with pytest.raises(AttributeError):
        value.maxlen = 10


def test_a_bytearray_is_stored_as_bytes(fresh_state: ServerState) -> None:
    data = bytearray(b"abc")
    fresh_state[KEY] = data
    data[0] = ord("z")
    assert fresh_state[KEY] == b"abc" and type(fresh_state[KEY]) is bytes


def test_a_counter_reads_like_a_counter_and_cannot_be_changed(fresh_state: ServerState) -> None:
    votes = collections.Counter(["a", "b", "a"])
    fresh_state["votes"] = votes
    votes["c"] += 5
    value = fresh_state["votes"]
    assert isinstance(value, collections.Counter)
    assert value["a"] == 2 and value["missing"] == 0 and "missing" not in value
    assert value.most_common(1) == [("a", 2)] and value.total() == 3
    assert value + collections.Counter(["b"]) == collections.Counter({"a": 2, "b": 2})
    assert json.loads(json.dumps(value)) == {"a": 2, "b": 1}
    for mutate in (
        lambda c: c.update(["a"]),
        lambda c: c.subtract(["a"]),
        lambda c: c.__setitem__("a", 9),
        lambda c: c.clear(),
        lambda c: c.__iadd__(collections.Counter("a")),
        lambda c: c.pop("a"),
    ):
        with pytest.raises(ReadOnlyValueError) as info:
            mutate(value)
        assert repr("votes") in str(info.value)
    mine = thaw(value)
    assert type(mine) is collections.Counter
    mine["a"] += 1
    assert fresh_state["votes"]["a"] == 2
    back = pickle.loads(pickle.dumps(value))
    assert back == value and type(back) is type(value)
    assert type(value.copy()) is collections.Counter and type(copy.copy(value)) is collections.Counter


def test_a_defaultdict_gives_defaults_on_read_without_inserting(fresh_state: ServerState) -> None:
    groups: collections.defaultdict[str, list[str]] = collections.defaultdict(list, {"a": ["x"]})
    fresh_state["groups"] = groups
    value = fresh_state["groups"]
    assert value["a"] == ["x"] and value["missing"] == [] and "missing" not in value
    assert value.default_factory is list
    with pytest.raises(ReadOnlyValueError) as info:
        value["missing"].append("y")  # the default is read-only too: no silent no-op
    assert repr("groups") in str(info.value)
    with pytest.raises(ReadOnlyValueError):
        value["b"] = []
    assert json.loads(json.dumps(value)) == {"a": ["x"]}
    mine = thaw(value)
    assert type(mine) is collections.defaultdict and mine.default_factory is list
    mine["new"].append(1)
    assert "new" not in fresh_state["groups"]
    assert pickle.loads(pickle.dumps(value))["other"] == []
    fresh_state["plain"] = collections.defaultdict(None, {"a": 1})
    with pytest.raises(KeyError):
        fresh_state["plain"]["missing"]


def test_an_ordered_dict_is_a_read_only_dict_in_its_order(fresh_state: ServerState) -> None:
    fresh_state[KEY] = collections.OrderedDict([("b", 1), ("a", 2)])
    assert type(fresh_state[KEY]) is FrozenDict and list(fresh_state[KEY]) == ["b", "a"]
    assert write_twice(
        fresh_state,
        collections.OrderedDict([("b", 1), ("a", 2)]),
        collections.OrderedDict([("a", 2), ("b", 1)]),
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: collections.deque([1, {"a": 2}]),
        lambda: collections.Counter("abca"),
        lambda: collections.defaultdict(list, {"a": [1]}),
        lambda: bytearray(b"xy"),
    ],
    ids=["deque", "Counter", "defaultdict", "bytearray"],
)
def test_equal_writes_of_these_kinds_are_not_changes(fresh_state: ServerState, make: Any) -> None:
    assert not write_twice(fresh_state, make(), make())


# -- DataFrames and arrays ---------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"x": [1.0, 2.0, float("nan")], "name": ["a", "b", "c"], "n": [1, 2, 3]},
        index=pd.Index([10, 20, 30], name="id"),
    )


@pytest.mark.parametrize(
    "make",
    [
        _frame,
        lambda: _frame()["x"],
        lambda: _frame().index,
        lambda: np.arange(12.0).reshape(3, 4),
        lambda: np.array(["a", None, 3], dtype=object),
    ],
    ids=["DataFrame", "Series", "Index", "ndarray", "object ndarray"],
)
def test_content_token_is_stable_and_follows_the_content(make: Callable[[], Any]) -> None:
    value = make()
    token = content_token(value)
    assert token is not None and token == content_token(value) and token == content_token(make())
    hash(token)
    if isinstance(value, pd.DataFrame):
        value.loc[20, "x"] += 100
    elif isinstance(value, pd.Series):
        value.iloc[0] = -1.0
    elif isinstance(value, pd.Index):
        value = value.rename("other")
    elif value.dtype == object:
        value[1] = "b"
    else:
        value[1, 1] = -0.5
    assert content_token(value) != token


def test_content_token_sees_labels_dtypes_and_object_cells() -> None:
    base = content_token(_frame())
    assert content_token(_frame().rename(columns={"x": "y"})) != base
    assert content_token(_frame().astype({"n": "int32"})) != base
    assert content_token(_frame().set_axis([10, 20, 31])) != base
    frame = _frame()
    frame.loc[10, "name"] = "z"
    assert content_token(frame) != base
    cells = _frame()
    cells["name"] = [["a"], ["b"], ["c"]]  # unhashable cells
    token = content_token(cells)
    assert token is not None and token == content_token(cells)


@pytest.mark.parametrize("value", [[1], {"a": 1}, 1, "s", object(), pmap(), None])
def test_content_token_is_none_for_other_objects(value: Any) -> None:
    assert content_token(value) is None


def test_equal_but_distinct_frames_and_arrays_are_unchanged_and_differences_are_changes() -> None:
    df = _frame()
    assert unchanged(df, df.copy())
    assert unchanged(df["x"], df["x"].copy())
    assert unchanged(df.index, df.index.copy())
    arr = np.array([1.0, np.nan, 3.0])
    assert unchanged(arr, arr.copy())
    assert unchanged(np.array(["a", None], dtype=object), np.array(["a", None], dtype=object))
    different = [
        df.assign(x=[1.0, 2.0, 3.0]),
        df.astype({"n": "float64"}),
        df.rename(columns={"x": "y"}),
        df.rename_axis("other"),
        df.set_axis([10, 20, 31]),
        df[["name", "x", "n"]],
    ]
    for other in different:
        assert not unchanged(df, other)
    assert not unchanged(arr, arr.astype("float32"))
    assert not unchanged(arr, arr.reshape(1, 3))
    assert not unchanged(arr, np.array([1.0, np.nan, 4.0]))
    assert not unchanged(df["x"], df["x"].rename("y"))


def test_writing_an_equal_copy_of_a_frame_is_not_a_change(fresh_state: ServerState) -> None:
    df = _frame()
    assert not write_twice(fresh_state, df, df.copy())
    assert fresh_state[KEY] is df  # stored by reference: the first one stays
    assert write_twice(fresh_state, df, df.assign(n=[1, 2, 4]))


class Model:
    """A by-reference object that claims to equal everything."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_other_by_reference_objects_compare_by_identity_even_inside_lists(fresh_state: ServerState) -> None:
    model = Model()
    assert not write_twice(fresh_state, [model], [model])
    assert write_twice(fresh_state, [model], [Model()])
    assert write_twice(fresh_state, {"m": model}, {"m": Model()})


def test_content_token_costs_c_speed() -> None:
    df = pd.DataFrame(
        {"a": np.arange(1_000_000), "b": np.random.rand(1_000_000), "c": np.random.rand(1_000_000)}
    )
    arr = np.random.rand(10_000_000)
    assert best_of(lambda: content_token(df), repeat=2) < 0.5
    assert best_of(lambda: content_token(arr), repeat=2) < 1.0
    assert math.isfinite(best_of(lambda: unchanged(df, df.copy()), repeat=1))


# -- large values take the C-speed paths: the same answers ---------------------------------


def test_many_rows_are_frozen_read_only_naming_the_key_and_not_aliased(fresh_state: ServerState) -> None:
    rows = [{"id": i, "name": f"u{i}"} for i in range(500)]
    lines = [[i, "x"] for i in range(500)]
    by_id = {i: {"n": i} for i in range(500)}
    fresh_state["rows"], fresh_state["lines"], fresh_state["by_id"] = rows, lines, by_id
    rows[3]["name"] = "changed"
    lines[3].append("y")
    by_id[3]["n"] = -1
    assert fresh_state["rows"][3] == {"id": 3, "name": "u3"}
    assert fresh_state["lines"][3] == [3, "x"]
    assert fresh_state["by_id"][3] == {"n": 3}
    for key, mutate in (
        ("rows", lambda v: v[7].__setitem__("id", 0)),
        ("lines", lambda v: v[7].append(0)),
        ("by_id", lambda v: v[7].clear()),
    ):
        with pytest.raises(ReadOnlyValueError) as info:
            mutate(fresh_state[key])
        assert repr(key) in str(info.value)


@pytest.mark.parametrize("zeros", [1, 3, 200])
def test_the_sign_of_a_zero_counts_in_long_float_lists(fresh_state: ServerState, zeros: int) -> None:
    base = [float(i % 50) if i % 50 else 0.0 for i in range(50 * zeros)] + [1.5] * 100
    assert base.count(0.0) == zeros
    flipped = list(base)
    flipped[50 * (zeros - 1)] = -0.0
    assert write_twice(fresh_state, base, flipped)
    assert math.copysign(1.0, fresh_state[KEY][50 * (zeros - 1)]) == -1.0
    assert not write_twice(fresh_state, list(base), list(base))


def test_long_float_lists_with_nans_of_any_bit_pattern_are_equal(fresh_state: ServerState) -> None:
    def make(nan: float) -> list[float]:
        return [nan if i % 10 == 0 else i / 3 for i in range(1000)]

    assert not write_twice(fresh_state, make(float("nan")), make(float("inf") - float("inf")))
    assert write_twice(fresh_state, make(float("nan")), [*make(float("nan"))[:-1], 0.5])


@pytest.mark.parametrize(
    "tail",
    [[1000], [1.5], [True], ["s"], [{"a": 1}], [(1, 2)], [1000, -0.0]],
    ids=["int", "float", "bool", "str", "dict", "tuple", "two"],
)
def test_appends_then_equal_and_unequal_writes_of_long_lists(
    fresh_state: ServerState, tail: list[Any]
) -> None:
    fresh_state[KEY] = list(range(1000))
    fresh_state[KEY] = fresh_state[KEY] + tail  # frozen against the stored value
    version = fresh_state.version(KEY)
    fresh_state[KEY] = [*range(1000), *copy.deepcopy(tail)]  # equal, all new objects
    assert fresh_state.version(KEY) == version
    for other in (
        [*range(1000), *[0] * len(tail)],
        [*range(1000), *[float(t) if t is True else t for t in tail]],
    ):
        if repr(other) != repr([*range(1000), *tail]):
            assert write_twice(fresh_state, [*range(1000), *tail], other), other
    rows = [{"id": i} for i in range(1000)]
    assert write_twice(fresh_state, rows, [*rows[:-1], {"id": True}])
    assert write_twice(fresh_state, rows, [*rows[:-1], (999,)])
    assert not write_twice(fresh_state, rows, [{"id": i} for i in range(1000)])


@pytest.mark.parametrize("n", [31, 32, 33, 63, 64, 1055, 1056, 1057, 1100, 33_830])
def test_random_edits_of_pvectors_and_pmaps_leave_nothing_plain_inside(n: int) -> None:
    rng = random.Random(n)
    v = freeze(pvector(range(n)), KEY)
    m = freeze(pmap({i: i for i in range(n)}), KEY)
    for _ in range(30):
        op = rng.choice(["append", "set", "extend", "delete", "evolver"])
        i = rng.randrange(len(v))
        plain = [rng.random()]
        if op == "append":
            new_v = v.append(plain)
        elif op == "set":
            new_v = v.set(i, plain)
        elif op == "extend":
            new_v = v.extend([plain, (plain,)] * rng.randrange(1, 40))
        elif op == "delete":
            new_v = v.delete(i)
        else:
            new_v = v.evolver().set(i, plain).append(plain).persistent()
        expected = thaw(new_v)
        v = freeze(new_v, KEY, previous=v)
        assert thaw(v) == expected, op
        assert not any(type(x) is list or (type(x) is tuple and type(x[0]) is list) for x in v), op
        new_m = m.set(rng.randrange(2 * n), plain).discard(rng.randrange(n))
        m = freeze(new_m, KEY, previous=m)
        assert thaw(m) == thaw(new_m)
        assert not any(type(x) is list for x in m.values())


def test_frames_and_arrays_inside_containers_compare_by_content(fresh_state: ServerState) -> None:
    df = _frame()
    assert not write_twice(fresh_state, [df, 1], [df.copy(), 1])
    assert not write_twice(fresh_state, {"df": df, "n": 1}, {"df": df.copy(), "n": 1})
    assert write_twice(fresh_state, [df, 1], [df.assign(n=[0, 0, 0]), 1])
    assert write_twice(fresh_state, [df], [1])
    assert write_twice(fresh_state, [np.arange(3)], [1])
    assert not write_twice(fresh_state, (np.arange(3.0),), (np.arange(3.0),))


def test_a_list_holding_nat_written_again_is_not_a_change(fresh_state: ServerState) -> None:
    """pandas' NaT is not == itself (like NaN): a row with a missing time,
    written again, must not rerun anybody."""
    fresh_state["rows"] = [{"at": pd.NaT, "n": 1}, pd.NaT]
    version = fresh_state.version("rows")
    fresh_state["rows"] = [{"at": pd.NaT, "n": 1}, pd.NaT]
    assert fresh_state.version("rows") == version
    fresh_state["rows"] = [{"at": pd.Timestamp("2026-01-01"), "n": 1}, pd.NaT]
    assert fresh_state.version("rows") > version


# -- the read-form cache ----------------------------------------------------------


def test_a_replaced_large_vector_is_not_kept_by_its_read_form(fresh_state: ServerState) -> None:
    s = fresh_state
    s["v"] = pvector(range(10_000))
    assert len(s["v"]) == 10_000  # read: its read form is cached
    s["v"] = []
    assert "v" not in s._read_cache
    s["w"] = pvector(range(10))
    assert len(s["w"]) == 10
    s.transact(lambda m: m.remove("w"))
    assert "w" not in s._read_cache
    s["x"] = pvector(range(10))
    assert len(s["x"]) == 10
    del s["x"]
    assert "x" not in s._read_cache


def test_concurrent_first_reads_of_a_new_version_convert_it_once(
    fresh_state: ServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = fresh_state
    s["v"] = pvector(range(300_000))  # long enough a conversion for threads to overlap
    conversions = [0]
    original = state_module.read_form

    def counting(value: Any, label: str | None = None) -> Any:
        conversions[0] += 1
        return original(value, label)

    monkeypatch.setattr(state_module, "read_form", counting)
    results: list[Any] = []
    run_threads([lambda: results.append(s["v"]) for _ in range(8)])
    assert conversions[0] == 1
    assert all(r is results[0] for r in results)


# -- a DataFrame changed in place and assigned back is a change ----------------------------


def test_a_dataframe_changed_in_place_and_assigned_back_advances_and_tells_watchers(
    fresh_state: ServerState,
) -> None:
    import pandas as pd

    s = fresh_state
    s["df"] = pd.DataFrame({"x": [1.0, 2.0, float("nan")], "y": ["a", "b", "c"]})
    seen: list[int] = []
    s.watch("df", lambda key, old, new, version: seen.append(version), with_version=True)
    version = s.version("df")

    d = s["df"]
    s["df"] = d  # the same, unchanged object again: no change
    assert s.version("df") == version
    s["df"] = d.copy()  # an equal copy (NaN included): no change
    assert s.version("df") == version

    d = s["df"]
    d.loc[1, "x"] += 100  # the upstream README's "don't, but people do"
    s["df"] = d
    assert s.version("df") > version
    assert seen == [s.version("df")]
    assert s["df"].loc[1, "x"] == 102.0

    s["df"] = d  # assigned again without a further change: nothing
    assert seen == [s.version("df")]


def test_a_model_from_cache_resource_written_every_run_changes_nothing(fresh_state: ServerState) -> None:
    class Model:
        def __eq__(self, other: object) -> bool:  # an object whose == would say "equal" to anything
            return True

        __hash__ = object.__hash__

    s = fresh_state
    model = Model()
    s["model"] = model
    version = s.version("model")
    for _ in range(3):
        s["model"] = model
    assert s.version("model") == version
    s["model"] = Model()  # another object: a change, whatever its == says
    assert s.version("model") > version
