"""A chat shared by every session of the server.

Try: `streamlit run examples/chat.py`, open it in two tabs, give each a name and
send messages from both. Every tab shows every message as soon as it is sent,
and a click is never lost, even when both tabs send at once.

Keys:
    "messages"  list of {"name": str, "text": str}, oldest first.
"""

import streamlit as st

from server_state import server_state

st.title("Chat")


def send() -> None:
    text = st.session_state.message.strip()
    if not text:
        return
    msg = {"name": st.session_state.name.strip() or "anonymous", "text": text}
    # update() is an atomic read-modify-write: two tabs sending at once both land.
    # The lambda may run again if another message got in first, so it only builds.
    server_state.update("messages", lambda m: [*m, msg], default=[])
    st.session_state.message = ""  # allowed here: callbacks run before the widget exists


st.text_input("Your name", key="name")
st.text_input("Message", key="message")
# A callback, not `if st.button(...)`: the write happens before this run reads
# "messages", so the sending tab shows its message in this very run, with no extra rerun.
st.button("Send", on_click=send)

# Reading binds this session to "messages": it reruns whenever anyone sends.
for m in server_state.get("messages", []):
    st.markdown(f"**{m['name']}**: {m['text']}")
