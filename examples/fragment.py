"""A shared value shown inside a fragment: other sessions rerun only the fragment.

Try: open two tabs and click "Bump" in one. In the other, "Fragment runs" goes
up and "Full runs" does not: only the fragment read "frag_value", so only the
fragment is rerun.

Keys:
    "frag_value"  int, how many times anyone clicked "Bump".
"""

import streamlit as st

from server_state import server_state

st.title("Fragment")

# Per-session run counters, to see what reran.
st.session_state.full_runs = st.session_state.get("full_runs", 0) + 1
st.write(f"Full runs: {st.session_state.full_runs}")


def bump() -> None:
    server_state.update("frag_value", lambda n: n + 1, default=0)


@st.fragment
def shared_value() -> None:
    st.session_state.frag_runs = st.session_state.get("frag_runs", 0) + 1
    st.write(f"Fragment runs: {st.session_state.frag_runs}")
    # The only read of "frag_value" in the app, so this session is bound to it in
    # this fragment's scope. Reading it in the body too would make every change
    # a full rerun.
    st.metric("Shared value", server_state.get("frag_value", 0))
    # A callback: the write lands before the fragment reads the value, so the
    # clicking tab needs no second run to show it.
    st.button("Bump", on_click=bump)


shared_value()
