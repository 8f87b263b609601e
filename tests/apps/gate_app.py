"""A login gate: the page shows a key, then stops early with ``st.stop()``
unless the session is a member. A button's callback writes the key.

Every run of a non-member ends in ``st.stop()``; that run is still complete
(the browser drops what it did not draw), so its reads are the session's
bindings like any finished run's.
"""

import streamlit as st

from server_state import server_state

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")

st.button("Post", on_click=lambda: server_state.update("posts", lambda n: n + 1, default=0))
st.markdown(f"posts={server_state.get('posts', 0)}")

if st.button("Join"):
    st.session_state.member = True

if not st.session_state.get("member"):
    st.markdown("members only below")
    st.stop()

st.markdown(f"member view: posts={server_state.get('posts', 0)}")
