"""A run that is still in progress when another session writes: that write
must not rerun (and so swallow) the click this run is processing.

The test holds the run open across processes with two files: while
``$SWALLOW_DIR/armed`` exists and ``$SWALLOW_DIR/open`` does not, a run waits
before it reaches its button.
"""

import os
import time
from pathlib import Path

import streamlit as st

from server_state import server_state

gate = Path(os.environ["SWALLOW_DIR"])

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1

st.markdown(f"other={server_state.get('other', 0)}")  # read before the gate

slow = st.query_params.get("slow") == "1"
deadline = time.monotonic() + 60
while slow and (gate / "armed").exists() and not (gate / "open").exists() and time.monotonic() < deadline:
    time.sleep(0.01)  # polling a file: the other side is another process

if st.button("Add"):
    server_state.update("added", lambda n: n + 1, default=0)
st.markdown(f"added={server_state.get('added', 0)}")
if st.button("Write other"):
    server_state.update("other", lambda n: n + 1, default=0)
