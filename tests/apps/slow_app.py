"""A page whose runs take longer than the scheduler's wait limit.

Query string: ``slow=<seconds>`` (every run sleeps that long) and
``read=first`` (show "v" before sleeping) or ``read=last`` (the default: show
it after). ``SERVER_STATE_RUN_WAIT_LIMIT`` (set by the test) shortens the
limit so the suite stays fast.
"""

import time

import streamlit as st

from server_state import server_state

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")

read_first = st.query_params.get("read", "last") == "first"
if read_first:
    st.markdown(f"v={server_state.get('v', 0)}")
time.sleep(float(st.query_params.get("slow", "0")))  # no yield point while it sleeps
if not read_first:
    st.markdown(f"v={server_state.get('v', 0)}")

st.button("Write", on_click=lambda: server_state.update("v", lambda n: n + 1, default=0))
st.button("Refresh")
