"""A chat with rooms, shared by every session of the server.

Try: open two tabs. Create a room in one: it appears in the other's room list
without changing what that tab has selected. Each tab only reruns for messages
in the room it is showing, and for people coming into it or leaving it ("Here:",
from ``server_state.presence``; a closed tab leaves within seconds). A room
where nothing was said for an hour vanishes ("general" stays, emptied).

Keys:
    "rooms"         list of room names, in creation order ("general" first).
    "room:<name>"   that room's messages: list of {"name": str, "text": str};
                    deleted after an hour without a change (``expire_keys``).
    "topic:<name>"  that room's topic, one box every tab edits (a shared
                    widget: ``server_state.widget``); an hour idle, it goes too.

"Your name" stays each tab's own (a widget of ``st.session_state``): a shared
name box would make everyone the same person.
"""

import streamlit as st

from server_state import server_state, server_state_lock

st.title("Chat rooms")

# A declaration, on every run of every process: each "room:..." key written
# from now on is deleted after an hour without a change.
server_state.expire_keys("room:", idle=3600)
server_state.expire_keys("topic:", idle=3600)

with server_state_lock["rooms"]:  # so two first visitors don't both initialise it
    if "rooms" not in server_state:
        server_state.rooms = ["general"]


def create_room() -> None:
    name = st.session_state.new_room.strip()
    if not name:
        return
    # The room's key first (a room listed without one counts as expired), with
    # its idle hour starting now.
    server_state.setdefault(f"room:{name}", [])
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


# Rooms whose messages expired leave the list (peek: no rerun for other rooms'
# keys; the tab that showed the room reruns for its expiry and prunes the list
# for everyone).
listed = server_state.rooms
gone = {r for r in listed if r != "general" and server_state.peek(f"room:{r}") is None}
if gone:
    listed = server_state.update("rooms", lambda rooms: [r for r in rooms if r not in gone])
if st.session_state.get("room") not in listed:
    st.session_state.room = "general"

with st.sidebar:
    st.text_input("New room", key="new_room")
    st.button("Create room", on_click=create_room)
    # Keyed, so the radio keeps this tab's choice when another tab adds a room
    # (a keyed radio's identity is its key, not its options).
    room = st.radio("Room", listed, key="room")

st.subheader(f"Room: {room}")
# One line: the box shows the room's topic, and an edit in any tab shows in all.
server_state.widget(st.text_input, "Topic", key=f"topic:{room}", default="")
st.text_input("Your name", key="name")
st.text_input("Message", key="message")
st.button("Send", on_click=send)

# Who is here: this tab is in the room it shows, under the name it gave. A
# tab that moves to another room leaves the one it was in.
if st.session_state.get("joined", room) != room:
    server_state.leave(st.session_state.joined)
st.session_state.joined = room
here = server_state.presence(room, name=st.session_state.get("name") or None)
st.caption("Here: " + ", ".join(m.name + (" (you)" if m.me else "") for m in here))

# Only this room's key is read, so messages in other rooms don't rerun this tab.
for m in server_state.get(f"room:{room}", []):
    st.markdown(f"**{m['name']}**: {m['text']}")
