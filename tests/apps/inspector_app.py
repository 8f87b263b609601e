"""The inspector on a page whose body reads no key, so only the inspector's
own fragment is bound (to every key): a write in another session reruns that
fragment alone. Writes happen in button callbacks.

INSPECTOR_ALLOW_FILE=<path>: allow_revert returns whether that file exists
(asked at render and again at click time); unset: read-only (no allow_revert).
"""

import os

import streamlit as st

from server_state import server_state

SECRET = "hunter2-do-not-show"

# peek() and writes bind nothing (setdefault and `in` would); equal writes change nothing.
if server_state.peek("secret") is None:
    server_state["secret"] = SECRET
if server_state.peek("greeting") is None:
    server_state["greeting"] = "hello"


def bump() -> None:
    server_state.update("count", lambda n: n + 1, default=0)


def create() -> None:
    server_state[f"new_{server_state.version('count')}"] = "fresh"


def rotate_secret() -> None:
    server_state["secret"] = SECRET + "-rotated"


def draft() -> None:
    server_state.set("draft", "text", idle=3600)


def join() -> None:  # in a callback: joins the lobby and binds nothing
    server_state.presence("lobby", name="Ada")


st.button("Bump", on_click=bump)
st.button("Draft", on_click=draft)
st.button("Join", on_click=join)
st.button("Create", on_click=create)
st.button("Rotate", on_click=rotate_secret)

flag = os.environ.get("INSPECTOR_ALLOW_FILE")
allow = None if flag is None else (lambda: os.path.exists(flag))
server_state.inspector(private=["secret"], allow_revert=allow)
