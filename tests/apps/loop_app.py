"""A script that writes a different value on every run and reads it: two
sessions of it rerun each other without end unless the library stops them."""

import streamlit as st

from server_state import server_state

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"seen={server_state.get('stamp', 0)}")
server_state.stamp = server_state.get("stamp", 0) + 1  # a new value every run
st.markdown(f"runs={st.session_state.runs}")
