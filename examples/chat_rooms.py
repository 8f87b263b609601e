"""A chat with rooms, shared by every session of the server.

Try: open two tabs. Create a room in one: it appears in the other's room list
without changing what that tab has selected. Each tab only reruns for messages
in the room it is showing.

Keys:
    "rooms"         list of room names, in creation order ("general" first).
    "room:<name>"   that room's messages: list of {"name": str, "text": str}.
"""

import streamlit as st

from server_state import server_state, server_state_lock

st.title("Chat rooms")

with server_state_lock["rooms"]:  # so two first visitors don't both initialise it
    if "rooms" not in server_state:
        server_state.rooms = ["general"]


def create_room() -> None:
    name = st.session_state.new_room.strip()
    if not name:
        return
    # Pure: a room created meanwhile by someone else is kept, a duplicate is not added.
    server_state.update("rooms", lambda rooms: rooms if name in rooms else [*rooms, name], default=[])
    st.session_state.room = name  # go to the new room; the radio below is not drawn yet
    st.session_state.new_room = ""


def send() -> None:
    text = st.session_state.message.strip()
    if not text:
        return
    msg = {"name": st.session_state.name.strip() or "anonymous", "text": text}
    server_state.update(f"room:{st.session_state.room}", lambda m: [*m, msg], default=[])
    st.session_state.message = ""


with st.sidebar:
    st.text_input("New room", key="new_room")
    st.button("Create room", on_click=create_room)
    # Keyed, so the radio keeps this tab's choice when another tab adds a room
    # (a keyed radio's identity is its key, not its options).
    room = st.radio("Room", server_state.rooms, key="room")

st.subheader(f"Room: {room}")
st.text_input("Your name", key="name")
st.text_input("Message", key="message")
st.button("Send", on_click=send)

# Only this room's key is read, so messages in other rooms don't rerun this tab.
for m in server_state.get(f"room:{room}", []):
    st.markdown(f"**{m['name']}**: {m['text']}")
