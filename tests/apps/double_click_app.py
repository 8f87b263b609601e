"""A click that arrives while the previous click's callback is still in its
``update`` (a user's double click, a slow backend). With ``runner.fastReruns``
(Streamlit's default) the second click stops the first runner and starts its
callback at once in another thread; the first callback goes on until its next
``st.session_state`` access or ``st.*`` call, where it stops. So the callback
takes its number in ``st.session_state`` *before* the update: the update is
the last thing it does, and both clicks post a message of their own.

The test holds the first update open across processes: while
``$DOUBLE_DIR/open`` does not exist an update waits inside its updater;
each callback announces itself with ``$DOUBLE_DIR/entered-<n>``.
"""

import os
import time
from pathlib import Path

import streamlit as st

from server_state import server_state

gate = Path(os.environ["DOUBLE_DIR"])
st.session_state.setdefault("posted", 0)


def post() -> None:
    k = st.session_state.posted + 1
    st.session_state.posted = k  # before the update: a stopped callback must not lose it
    entered = len(list(gate.glob("entered-*"))) + 1
    (gate / f"entered-{entered}").touch()

    def append(chat: list[int]) -> list[int]:
        deadline = time.monotonic() + 60
        while not (gate / "open").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a file: the other side is another process
        return [*chat, k]

    server_state.update("chat", append, default=[])


st.button("Post", on_click=post)
st.markdown(f"chat={server_state.get('chat') or []}")
st.markdown(f"posted={st.session_state.posted}")
