"""The chat of the Redis load test (benchmarks/load_chat.py,
tests/test_redis_load.py), run as several ``streamlit run`` replicas sharing
one Redis (``SERVER_STATE_URL``).

Every session shows the whole history it reads (``server_state.get("chat")``,
a pvector of messages): ``count=<n> digest=<sha1 of every message id, in
order> last=<id>``, and how many messages it posted itself. "Post" appends
one message (id ``<session tag>-<k>``) with ``update``: on Redis it travels
as a patch (the new tail), whatever the length of the history. Each post
prints ``load-chat posting <id>`` before the update and ``load-chat
committed <id>`` once it returned, into the server log: what was written,
told apart from what Streamlit made of the click.

Query string: ``tag=<name>``, this session's name in its message ids.
"""

from __future__ import annotations

import hashlib
import os
import sys

import streamlit as st
from pyrsistent import pvector

from server_state import server_state

tag = st.query_params.get("tag", "anon")
st.session_state.setdefault("posted", 0)


def say(line: str) -> None:
    """One line into the server log in one write (sessions run in threads of their own)."""
    err = sys.__stderr__
    if err is not None:
        err.write(line + "\n")
        err.flush()


def post() -> None:
    k = st.session_state.posted + 1
    # Taken before the update: a click that arrives meanwhile stops this
    # callback (fastReruns) at its next st.session_state access, so the
    # update must be the last thing it does, or the next click reuses k.
    st.session_state.posted = k
    message = {
        "id": f"{tag}-{k}",
        "from": tag,
        "replica": os.getpid(),
        "text": f"hello number {k} from {tag}",
    }
    # The server log is the load test's ground truth of what was written.
    say(f"load-chat posting {message['id']}")
    server_state.update("chat", lambda chat: chat.append(message), default=pvector())
    say(f"load-chat committed {message['id']}")


st.button("Post", on_click=post)
chat = server_state.get("chat") or []
digest = hashlib.sha1("\n".join(m["id"] for m in chat).encode(), usedforsecurity=False).hexdigest()[:16]
st.markdown(f"count={len(chat)} digest={digest} last={chat[-1]['id'] if chat else '-'}")
st.markdown(f"posted={st.session_state.posted}")
