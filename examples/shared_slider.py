"""The seed's shared slider: one slider value for every session.

Try: open two tabs and drag the slider in one; the other follows. The value is
written back on every run, yet nothing loops: writing the value already stored
changes nothing and reruns nobody.

Keys:
    "slider_value"  int, 0..100.
"""

import streamlit as st

from server_state import server_state, server_state_lock

st.title("Shared slider")

with server_state_lock["slider_value"]:  # so two first visitors don't both initialise it
    if "slider_value" not in server_state:
        server_state.slider_value = 0

# No key on purpose: the slider's identity includes `value`, so when another tab
# moves it, this tab's slider is recreated at the new value instead of keeping its own.
server_state.slider_value = st.slider("Shared value", 0, 100, value=server_state.slider_value)

st.write("Everyone sees:", server_state.slider_value)
