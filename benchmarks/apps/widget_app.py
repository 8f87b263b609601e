"""A text box bound to a shared key with server_state.widget, beside the
seed's counter button, for benchmarks/widget_bench.py: an edit in one tab
until the other tab shows it, against a click until the other tab shows it."""

import streamlit as st

from server_state import server_state

title = server_state.widget(st.text_input, "Title", key="title", default="")
st.markdown(f"title={title}")

if st.button("Increment"):
    server_state.update("count", lambda n: n + 1, default=0)
st.markdown(f"count={server_state.get('count', 0)}")
