"""content_token fingerprints object cells (pandas object dtype, numpy object
arrays) by content: a frame or array stored by reference and changed in place
is a change when a reader could tell, and only then."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from server_state import ServerState
from server_state._values import content_token

KEY = "k"


def rewritten_is_change(state: ServerState, value: Any, mutate: Callable[[Any], None]) -> bool:
    """Store ``value``, change it in place with ``mutate``, store the same
    object again: True if the store saw a change (its version advanced)."""
    state[KEY] = value
    version = state.version(KEY)
    mutate(value)
    state[KEY] = value
    return state.version(KEY) != version


def _object_frame() -> pd.DataFrame:
    return pd.DataFrame({"o": pd.Series([-1, "a", None, 2.5], dtype=object), "n": [1, 2, 3, 4]})


def _set_frame(row: int, value: Any) -> Callable[[pd.DataFrame], None]:
    def mutate(df: pd.DataFrame) -> None:
        df.iat[row, 0] = value

    return mutate


def _set_cell(i: int, value: Any) -> Callable[[Any], None]:
    def mutate(v: Any) -> None:
        v[i] = value

    return mutate


def _object_array() -> np.ndarray[Any, Any]:
    return np.array([-1, "a", None, 2.5], dtype=object)


def _object_series() -> pd.Series[Any]:
    return pd.Series([-1, "a", None, 2.5], dtype=object, name="s")


MAKERS: list[tuple[str, Callable[[], Any], Callable[[int, Any], Callable[[Any], None]]]] = [
    ("DataFrame", _object_frame, _set_frame),
    ("Series", _object_series, _set_cell),
    ("ndarray", _object_array, _set_cell),
]


@pytest.mark.parametrize(("make", "setter"), [(m, s) for _, m, s in MAKERS], ids=[n for n, _, _ in MAKERS])
def test_minus_one_to_minus_two_in_place_is_a_change(
    fresh_state: ServerState, make: Callable[[], Any], setter: Callable[[int, Any], Callable[[Any], None]]
) -> None:
    assert hash(-1) == hash(-2)  # why hash() could not tell
    value = make()
    token = content_token(value)
    setter(0, -2)(value)
    assert content_token(value) != token
    assert rewritten_is_change(fresh_state, make(), setter(0, -2))


@pytest.mark.parametrize(("make", "setter"), [(m, s) for _, m, s in MAKERS], ids=[n for n, _, _ in MAKERS])
def test_an_equal_rewrite_in_place_is_not_a_change(
    fresh_state: ServerState, make: Callable[[], Any], setter: Callable[[int, Any], Callable[[Any], None]]
) -> None:
    assert not rewritten_is_change(fresh_state, make(), setter(0, -1))
    assert not rewritten_is_change(fresh_state, make(), setter(1, "a"))
    assert not rewritten_is_change(fresh_state, make(), setter(3, 2.5))
    assert not rewritten_is_change(fresh_state, make(), lambda v: None)
    assert content_token(make()) == content_token(make())  # equal, distinct objects: equal tokens


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (-1, -2),
        (1, 1.0),  # the type counts, as in unchanged()
        (1, True),
        (1, "1"),
        ("1", b"1"),
        (0.0, -0.0),
        (None, float("nan")),
        (float("nan"), None),
        ("a", "a "),
        (2**70, 2**70 + 1),
        ((1, 2), [1, 2]),
        ([1, [2, 3]], [1, [2, 4]]),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # dict order is visible
        (np.int64(1), np.int32(1)),
        (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01", tz="UTC")),
    ],
    ids=repr,
)
@pytest.mark.parametrize(
    "make", [_object_array, _object_series, _object_frame], ids=["ndarray", "Series", "DataFrame"]
)
def test_cells_that_a_reader_tells_apart_give_other_tokens(
    make: Callable[[], Any], before: Any, after: Any
) -> None:
    a, b = make(), make()
    for v, cell in ((a, before), (b, after)):
        if isinstance(v, pd.DataFrame):
            v.iat[1, 0] = cell
        else:
            v[1] = cell
    assert content_token(a) != content_token(b)


def test_nan_cells_and_equal_nested_cells_give_equal_tokens() -> None:
    def make() -> np.ndarray[Any, Any]:
        return np.array([float("nan"), None, [1, {"a": (2, 3)}], np.arange(3), pd.NA, pd.NaT], dtype=object)

    assert content_token(make()) == content_token(make())


def test_nested_objects_changed_in_place_are_changes() -> None:
    def make() -> pd.DataFrame:
        return pd.DataFrame(
            {"tags": [["a"], ["b"]], "meta": [{"k": 1}, {"k": 2}], "arr": [np.zeros(3), np.ones(3)]}
        )

    changes: list[Callable[[pd.DataFrame], None]] = [
        lambda df: df.at[0, "tags"].append("z"),
        lambda df: df.at[1, "meta"].update(k=3),
        lambda df: df.at[0, "arr"].__setitem__(1, -1.0),
    ]
    for change in changes:  # a state and a frame of their own each: copies share their cells
        assert rewritten_is_change(ServerState(), make(), change)
    cells = np.array([[1, 2], [3]], dtype=object)
    token = content_token(cells)
    cells[0].append(-1)
    assert content_token(cells) != token


def test_object_index_and_columns_by_content() -> None:
    def make() -> pd.DataFrame:
        return pd.DataFrame({"x": [1, 2]}, index=pd.Index([-1, "a"], dtype=object))

    assert content_token(make()) == content_token(make())
    other = pd.DataFrame({"x": [1, 2]}, index=pd.Index([-2, "a"], dtype=object))
    assert content_token(make()) != content_token(other)


def test_unpicklable_cells_count_by_identity() -> None:
    lock = threading.Lock()
    a = np.array([lock, 1], dtype=object)
    assert content_token(a) == content_token(np.array([lock, 1], dtype=object))
    assert content_token(a) != content_token(np.array([threading.Lock(), 1], dtype=object))


def test_the_registry_answers_the_store() -> None:
    from server_state._values import SCALAR_TYPES, TOKENLESS_TYPES, needs_token

    assert {type(None), bool, int, float, str, bytes} == SCALAR_TYPES
    assert SCALAR_TYPES <= TOKENLESS_TYPES
    assert {tuple, frozenset, list, dict} <= TOKENLESS_TYPES
    assert not any(needs_token(kind) for kind in TOKENLESS_TYPES)
    assert needs_token(np.ndarray) and needs_token(pd.DataFrame) and needs_token(pd.Series)
    for value in (None, True, 1, 1.5, "s", b"b", (1,), frozenset({1})):
        assert type(value) in TOKENLESS_TYPES and content_token(value) is None
