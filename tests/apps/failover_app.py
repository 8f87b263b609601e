"""The seed README's counter, plus a line naming the replica that ran it
(``FAILOVER_REPLICA``) and this session's runs, for tests/test_failover.py
and tests/test_browser_failover.py.

The count starts with ``setdefault`` rather than the seed's ``in`` check under
the lock: the tab that creates the key then shows what it wrote and is not
rerun for it (README rule 2), so run counts are exact whichever of several
tabs returning to a restarted server runs first."""

import os

import streamlit as st

from server_state import server_state, server_state_lock

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"replica={os.environ.get('FAILOVER_REPLICA', '-')} runs={st.session_state.runs}")

server_state.setdefault("count", 0)

if st.button("Increment"):
    with server_state_lock.count:
        server_state.count += 1

st.write("Count = ", server_state.count)
