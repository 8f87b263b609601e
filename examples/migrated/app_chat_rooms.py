# streamlit-server-state's app_chat_rooms.py (v0.20.2: pages/2_chat_rooms.py),
# ported to server_state. Only the import changed; the comments marked
# "server_state:" say where the app now behaves differently, and why no other
# change is needed. See docs/migrating.md.
import streamlit as st

# server_state: the one required change, the package name.
from server_state import server_state, server_state_lock

with server_state_lock["rooms"]:
    if "rooms" not in server_state:
        server_state["rooms"] = []

# server_state: a read-only list (a list subclass: st.radio takes it as it is).
# rooms.append(...) would raise ReadOnlyValueError; this app never mutates it.
rooms: list[str] = server_state["rooms"]

room = st.sidebar.radio("Select room", rooms)

with st.sidebar.form("New room"):

    def on_create():
        new_room_name = st.session_state.new_room_name
        with server_state_lock["rooms"]:
            # server_state: builds a new list (read-only + list gives a plain
            # list) and assigns it, so it works unchanged. The same in one atomic
            # call: server_state.update("rooms", lambda r: r + [new_room_name]).
            server_state["rooms"] = server_state["rooms"] + [new_room_name]

    st.text_input("Room name", key="new_room_name")
    st.form_submit_button("Create a new room", on_click=on_create)

if not room:
    st.stop()

room_key = f"room_{room}"
with server_state_lock[room_key]:
    if room_key not in server_state:
        server_state[room_key] = []

st.header(room)

nickname = st.text_input("Nick name", key=f"nickname_{room}")
if not nickname:
    st.warning("Set your nick name.")
    st.stop()

message_input_key = f"message_input_{room}"


def on_message_input():
    new_message_text = st.session_state[message_input_key]
    if not new_message_text:
        return

    new_message_packet = {
        "nickname": nickname,
        "text": new_message_text,
    }

    with server_state_lock[room_key]:
        # server_state: written in a callback, before the body reads it, so the
        # sender is not rerun at all; every tab showing this room reruns once.
        # A tab that has moved to another room is not rerun for this one
        # (upstream kept rerunning every tab that had ever shown it).
        server_state[room_key] = server_state[room_key] + [new_message_packet]


st.text_input("Message", key=message_input_key, on_change=on_message_input)

st.subheader("Messages:")
# server_state: a read-only list of read-only dicts; st.write shows it as JSON,
# as before.
st.write(server_state[room_key])
