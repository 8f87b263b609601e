"""A snapshot taken on the first run and kept in ``st.session_state``: every
later run shows the same old instant, so a rerun never brings the session up
to date. Once "k" advances, the session would be rerun for that same change
without end; the library must stop that and say so."""

import streamlit as st

from server_state import server_state

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")

if "snap" not in st.session_state:
    st.session_state.snap = server_state.snapshot("k")
st.markdown(f"k_then={st.session_state.snap.get('k', 0)}")
st.button("Write", on_click=lambda: server_state.update("k", lambda n: n + 1, default=0))
