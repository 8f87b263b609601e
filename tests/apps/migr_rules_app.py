"""One page per claim of docs/migrating.md, for tests/test_migration_examples.py.

Each button is one pattern of an app written for streamlit-server-state; the
markdown lines show what another tab sees. ``?outside=1`` also reads "frag"
outside the fragment (the fix that makes a change rerun the whole page).
"""

import streamlit as st

from server_state import force_rerun_bound_sessions, server_state, server_state_lock

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")


class Board:
    """An object of the app's own: stored by reference, compared by identity."""

    def __init__(self) -> None:
        self.notes: list[str] = []


with server_state_lock["messages"]:
    if "messages" not in server_state:
        server_state.messages = []
with server_state_lock["board"]:
    if "board" not in server_state:
        server_state.board = Board()

# Read before the buttons below write: the writer's case of rule 2.
st.markdown(f"count={server_state.get('count', 0)}")
st.markdown(f"messages={list(server_state.messages)}")
st.markdown(f"notes={server_state.board.notes}")
if st.query_params.get("outside"):
    st.markdown(f"frag outside={server_state.get('frag', 0)}")

if st.button("Increment"):
    with server_state_lock.count:
        server_state.count = server_state.get("count", 0) + 1

if st.button("Write the same count"):
    server_state.count = server_state.get("count", 0)

if st.button("Append with update"):
    server_state.update("messages", lambda ms: [*ms, "hi"])

if st.button("Change the board and reassign it"):
    board = server_state.board
    board.notes.append("reassigned")
    server_state.board = board  # the same object: no change, no rerun

if st.button("Change the board and announce it"):
    server_state.board.notes.append("announced")
    force_rerun_bound_sessions("board")


@st.fragment
def fragment() -> None:
    st.markdown(f"frag={server_state.get('frag', 0)}")


fragment()
if st.button("Bump frag"):
    server_state.update("frag", lambda n: n + 1, default=0)

# Last, and drawn before either raises: an uncaught error ends the run there.
append_in_place = st.button("Append in place")
extend = st.button("Extend with +=")
if append_in_place:
    server_state.messages.append("hi")  # raises ReadOnlyValueError
if extend:
    server_state.messages += ["hi"]  # raises ReadOnlyValueError
