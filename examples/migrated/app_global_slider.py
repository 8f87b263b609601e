# streamlit-server-state's app_global_slider.py (v0.20.2: pages/3_global_slider.py),
# ported to server_state. Only the import changed; the comments marked
# "server_state:" say where the app now behaves differently, and why no other
# change is needed. See docs/migrating.md.
import streamlit as st

# server_state: the one required change, the package name.
from server_state import server_state, server_state_lock

st.title("Globally Shared Slider Example")
st.markdown(
    "Open this app in multiple tabs/windows and "
    "see the slider value is shared and synchronized across the sessions."
)

with server_state_lock["slider_value"]:
    if "slider_value" not in server_state:
        server_state.slider_value = 50  # Initial value
    # server_state: this line writes on every run of every tab. Writing the
    # value already stored is no change (no rerun), so the tabs do not rerun
    # each other. A move reruns every other tab once, and the mover once after
    # its run (it read the old value before writing), never during it (upstream
    # requested its rerun from inside that run, and could cut it short).
    server_state.slider_value = st.slider(
        "Shared value", min_value=0, max_value=100, value=server_state.slider_value
    )
