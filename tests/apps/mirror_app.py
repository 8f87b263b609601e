"""Widgets that edit a shared value, mirrored through st.session_state.

``?mode=version`` (the default, the pattern the README recommends): before
the widget, assign ``st.session_state[widget_key]`` from server_state when
the key's version moved since this session last did; write it back in
``on_change``. ``?mode=value``: assign when the widget's own state differs
from the shared value (a pattern that cannot repair a box whose edit crossed
a server-sent value). The last box passes ``value=server_state[...]`` with a
``key=``: Streamlit identifies a keyed widget by its key, so a new ``value=``
never reaches the script (in Chromium the box itself sometimes shows it,
while the script still reads the old one).
"""

from typing import Any

import streamlit as st

from server_state import server_state

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")

mode = st.query_params.get("mode", "version")


def mirror(widget_key: str, shared_key: str, default: Any) -> Any:
    """The shared value for the box, sent to the browser when it moved."""
    version = server_state.version(shared_key)  # first: a write in between costs one more assignment
    value = server_state.get(shared_key, default)  # binds: this session reruns when it changes
    if mode == "version":
        if st.session_state.get(f"{widget_key}@version") != version:
            st.session_state[widget_key] = value
            st.session_state[f"{widget_key}@version"] = version
    elif st.session_state.get(widget_key) != value:
        st.session_state[widget_key] = value
    return value


def publish(widget_key: str, shared_key: str) -> None:
    server_state[shared_key] = st.session_state[widget_key]


n = mirror("n_box", "n", 40)
st.number_input("N", key="n_box", step=1, on_change=publish, args=("n_box", "n"))
st.markdown(f"n={n} box_state={st.session_state.n_box}")

title = mirror("title_box", "title", "")
st.text_input("Title", key="title_box", on_change=publish, args=("title_box", "title"))
st.markdown(f"title={title}")

by_value = st.text_input("Title by value", value=server_state.get("title", ""), key="title_by_value")
st.markdown(f"by_value={by_value}")
