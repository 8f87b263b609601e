"""Read-only values rendered by Streamlit widgets (tests/test_browser.py).

Stores a plain nested value and a pyrsistent vector once, then hands both,
as read, to elements that take lists and dicts.
"""

import streamlit as st
from pyrsistent import pvector

from server_state import server_state, server_state_lock

with server_state_lock["data"]:
    if "data" not in server_state:
        server_state["data"] = {
            "rows": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
            "tags": ["red", "blue"],
        }

with server_state_lock["pv"]:
    if "pv" not in server_state:
        server_state["pv"] = pvector(["p", "q"])

st.json(server_state.data)
st.write(server_state.data["tags"])
st.radio("Tag", server_state.data["tags"])
st.selectbox("Pick", server_state.data["tags"])
st.dataframe(server_state.data["rows"])
st.radio("PV", server_state.pv)
