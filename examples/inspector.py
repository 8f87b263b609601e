"""The inspector next to a small app: every key, who shows it, every commit.

Try: open two tabs. Click the buttons in one; the inspector in the other
follows without a reload (only its fragment reruns). "api_token" is private:
its type, size and version show, its value never reaches the browser. Tick
"Admin" to get a revert button on each commit: it writes back the state
right after that commit, as one new commit.

Keys:
    "count"      int, clicks on "+1".
    "messages"   list of str, one per click on "Say hello".
    "colour"     str, the last colour picked.
    "api_token"  str, a secret the app uses and the inspector hides.
"""

import random

import streamlit as st

from server_state import server_state

st.set_page_config(page_title="server_state inspector", layout="wide")

# peek() binds nothing: setting up the token does not bind this page to it.
if server_state.peek("api_token") is None:
    server_state["api_token"] = "tok-" + "".join(random.choices("abcdef0123456789", k=24))


def say_hello() -> None:
    server_state.update("messages", lambda ms: [*ms, f"hello #{len(ms) + 1}"], default=[])


def pick_colour() -> None:
    server_state["colour"] = random.choice(["red", "green", "blue", "amber", "violet"])


app, inspector = st.columns([1, 2], gap="large")

with app:
    st.header("The app")
    st.button("+1", on_click=lambda: server_state.update("count", lambda n: n + 1, default=0))
    st.button("Say hello", on_click=say_hello)
    st.button("Pick a colour", on_click=pick_colour)
    st.metric("Count", server_state.get("count", 0))  # reads bind: these two show in "bound sessions"
    st.write(server_state.get("messages", []))
    st.toggle("Admin (may revert)", key="admin")
    st.caption("In a real app, allow_revert would check the signed-in user (st.user).")

with inspector:
    server_state.inspector(
        private=["api_token"],
        allow_revert=lambda: bool(st.session_state.get("admin")),
        history=10,
    )
