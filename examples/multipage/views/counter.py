"""The "Counter" page: a shared counter (key "count")."""

import streamlit as st

from server_state import server_state


def increment() -> None:
    server_state.update("count", lambda n: n + 1, default=0)


st.title("Counter")
st.button("Increment", on_click=increment)
st.write(f"Count: {server_state.get('count', 0)}")
