"""server_state.widget's errors, raised before anything is drawn or written,
and the data editor's delta applied to a frame another tab changed."""

from __future__ import annotations

import pandas as pd
import pytest
import streamlit as st

from server_state import ServerState, ServerStateKeyError, ServerStateTypeError
from server_state._widgets import apply_delta


def test_an_unsupported_widget_is_refused_naming_the_key(fresh_state: ServerState) -> None:
    with pytest.raises(ServerStateTypeError, match=r"key='title'.*st\.text_input") as caught:
        fresh_state.widget(st.button, "Go", key="title", default="")
    assert caught.value.key == "title"
    with pytest.raises(ServerStateTypeError, match="not a supported widget"):
        fresh_state.widget(print, "Go", key="title", default="")
    assert "title" not in fresh_state


def test_an_absent_key_without_default_says_to_give_one(fresh_state: ServerState) -> None:
    with pytest.raises(ServerStateKeyError, match=r"no key 'title'; give default=") as caught:
        fresh_state.widget(st.text_input, "Title", key="title")
    assert caught.value.key == "title"


def test_a_value_argument_is_refused(fresh_state: ServerState) -> None:
    with pytest.raises(ServerStateTypeError, match="takes no value=; give default="):
        fresh_state.widget(st.text_input, "Title", key="title", default="", value="x")
    with pytest.raises(ServerStateTypeError, match="takes no index="):
        fresh_state.widget(st.selectbox, "Pick", key="pick", default="a", options=["a"], index=0)


def test_a_cell_edit_lands_by_row_label_on_the_current_frame() -> None:
    base = pd.DataFrame({"done": [False, False, False], "task": ["milk", "eggs", "bread"]})
    # Another tab deleted row 0 and edited "bread" since this tab was shown `base`.
    current = apply_delta(base, base, {"deleted_rows": [0], "edited_rows": {2: {"task": "rye"}}})
    mine = apply_delta(current, base, {"edited_rows": {1: {"done": True}, 0: {"task": "gone"}}})
    assert list(mine.index) == [1, 2]
    assert mine.to_dict("records") == [{"done": True, "task": "eggs"}, {"done": False, "task": "rye"}]
    assert str(mine["done"].dtype) == "bool"


def test_an_added_row_never_takes_a_deleted_rows_label() -> None:
    base = pd.DataFrame({"task": ["a", "b", "c"]})
    after = apply_delta(base, base, {"deleted_rows": [2], "added_rows": [{"task": "d"}]})
    assert list(after.index) == [0, 1, 3]
    stale_edit = apply_delta(after, base, {"edited_rows": {2: {"task": "c2"}}})  # a tab still showing "c"
    assert stale_edit["task"].tolist() == ["a", "b", "d"]


def test_an_added_row_needs_an_integer_index() -> None:
    base = pd.DataFrame({"task": ["a"]}, index=["x"])
    with pytest.raises(ServerStateTypeError, match="integer index"):
        apply_delta(base, base, {"added_rows": [{"task": "b"}]})
