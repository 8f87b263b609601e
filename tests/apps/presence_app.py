"""Who is here, for tests/test_presence_servers.py and the Chromium test: the
tab's name comes from the query string (``?name=Ada``); one line lists the
members of the lobby, the tab's own marked with "(me)"."""

import streamlit as st

from server_state import server_state

here = server_state.presence("lobby", name=st.query_params.get("name"))
st.text("here: " + ", ".join(m.name + (" (me)" if m.me else "") for m in here))
