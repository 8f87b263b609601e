"""A bound text box and a shared to-do table, for Chromium
(tests/test_browser_widgets.py). The table's text line shows the frame the
editor returned."""

import pandas as pd
import streamlit as st

from server_state import server_state

title = server_state.widget(st.text_input, "Title", key="title", default="")
st.markdown(f"title={title}")

TODO = pd.DataFrame({"task": ["milk", "eggs", "bread"], "owner": ["ann", "bob", "cy"]})
table = server_state.widget(st.data_editor, key="todo", default=TODO, hide_index=True)
st.markdown("todo=" + "; ".join(f"{row.task}/{row.owner}" for row in table.itertuples()))
