"""A callback sends the text and clears its box; as the run that follows
ends, another writer (a thread) commits a key the page shows, so the session
is rerun the moment it settles.

Keys:
    "sent"  list of str, every text sent.
    "echo"  int, one more after each send.
"""

import threading

import streamlit as st

from server_state import server_state


def send() -> None:
    text = st.session_state.message
    server_state.update("sent", lambda m: [*m, text], default=[])
    st.session_state.message = ""  # the browser takes it when it draws this run
    st.session_state.echo_due = True


st.text_input("Message", key="message")
st.button("Send", on_click=send)
st.write(f"sent {len(server_state.get('sent', []))}")
st.write(f"echo {server_state.get('echo', 0)}")
if st.session_state.pop("echo_due", False):
    threading.Thread(target=lambda: server_state.update("echo", lambda n: n + 1, default=0)).start()
# A page with some weight: drawing it takes the browser a moment.
for i in range(50):
    st.markdown(f"line **{i}**")
