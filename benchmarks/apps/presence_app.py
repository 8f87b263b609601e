"""Who is here, for benchmarks/presence_bench.py: the tab's name from the query
string (``?name=Ada``); one line lists the members of the lobby."""

import streamlit as st

from server_state import server_state

here = server_state.presence("lobby", name=st.query_params.get("name"))
st.text("here: " + ", ".join(m.name + (" (me)" if m.me else "") for m in here))
