"""A page for the real-server expiry test: "X is typing", a key that lives
three seconds after its last change. Counts its own runs."""

import streamlit as st

from server_state import server_state

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")

if st.button("Type"):
    server_state.set("typing", "Ann", idle=3.0)

st.markdown(f"typing={server_state.get('typing', 'nobody')}")
