# Upstream's global slider (streamlit-server-state v0.20.2, pages/3_global_slider.py; formerly
# app_global_slider.py), copied byte for byte except the import line, which names
# server_state instead of streamlit_server_state. tests/test_migration_examples.py
# checks both: the copy is faithful, and it behaves as docs/migrating.md says.
import streamlit as st

from server_state import server_state, server_state_lock

st.title("Globally Shared Slider Example")
st.markdown(
    "Open this app in multiple tabs/windows and "
    "see the slider value is shared and synchronized across the sessions."
)

with server_state_lock["slider_value"]:
    if "slider_value" not in server_state:
        server_state.slider_value = 50  # Initial value
    server_state.slider_value = st.slider(
        "Shared value", min_value=0, max_value=100, value=server_state.slider_value
    )
