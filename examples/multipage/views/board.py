"""The "Board" page: the shared count and a shared note (keys "count", "note")."""

import streamlit as st

from server_state import server_state


def publish_note() -> None:
    server_state.note = st.session_state.note_input.strip()


st.title("Board")
st.metric("Count", server_state.get("count", 0))
# Sets the note when this tab submits (Enter or leaving the field); other tabs
# show it below, each keeping its own draft in its own box.
st.text_input("Note", key="note_input", on_change=publish_note)
st.markdown(f"**Note:** {server_state.get('note') or '_(none yet)_'}")
