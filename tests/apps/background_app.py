"""Writes from a thread with no session: a click starts one, which bumps
"bg" once and ends; every session showing "bg" must rerun."""

import threading

import streamlit as st

from server_state import server_state

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")


def write_from_thread() -> None:
    server_state.update("bg", lambda n: n + 1, default=0)


if st.button("Start thread"):
    worker = threading.Thread(target=write_from_thread)  # no ScriptRunContext attached
    worker.start()
    worker.join()

st.markdown(f"bg={server_state.get('bg', 0)}")
