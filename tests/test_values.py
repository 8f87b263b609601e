"""The value model (DESIGN §2): what is stored, what a read hands out, what
counts as a change."""

from __future__ import annotations

import collections
import copy
import json
import pickle
from typing import Any

import pytest
from pyrsistent import PMap, PSet, PVector, pmap, pset, pvector

from server_state import (
    FrozenDict,
    FrozenList,
    ReadOnlyValueError,
    ServerState,
    ServerStateError,
    thaw,
)

KEY = "shopping"


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
    # DESIGN §2: reads must not hand out raw pyrsistent values (Streamlit
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
