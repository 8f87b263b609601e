"""A page for the real-server tests: counts its own runs and reads "count"
unless told not to (query string ``show=none``, or the checkbox unticked)."""

import streamlit as st

from server_state import no_rerun, server_state

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")

if st.button("Increment"):  # written in the body, read only afterwards
    server_state.update("count", lambda n: n + 1, default=0)

st.button(
    "Add in callback",
    on_click=lambda: server_state.update("count", lambda n: n + 1, default=0),
)

if st.query_params.get("show", "count") == "count" and st.checkbox("Read count", value=True):
    st.markdown(f"count={server_state.get('count', 0)}")

if st.button("Silent add"):  # announces nothing: others see it on their next run
    with no_rerun:
        server_state.update("count", lambda n: n + 1, default=0)

if st.button("Refresh"):
    pass
st.markdown(f"bound={server_state.bound_sessions('count')} sessions={server_state.stats()['sessions']}")
