"""Shows the library's own counters from a fragment that reruns itself every
0.3 s, so a test can watch them change without anything being written.
The body reads "k", so every session is bound to it."""

import streamlit as st

from server_state import server_state

st.markdown(f"k={server_state.get('k', 0)}")
st.button("Write", on_click=lambda: server_state.update("k", lambda n: n + 1, default=0))


@st.fragment(run_every=0.3)
def counters() -> None:
    st.markdown(f"sessions={server_state.stats()['sessions']} bound={server_state.bound_sessions('k')}")


counters()
