"""A page for tests/test_history_server.py: sessions that show some keys,
write them, and revert them (``server_state.revert``) from a click or from a
thread with no session, on one server or on replicas sharing one Redis.

Query string:

- ``show=a,b``: the keys this session shows, one line ``<key>=<value>
  version=<version>`` each (default: none; such a session is bound to
  nothing);
- ``write=a,b``: the keys "Write" adds 1 to, one ``update`` (one commit)
  each (default: the keys shown);
- ``history=<n>``: also list the last ``n`` commits, one text line
  ``commit seq=<seq> keys=<keys> origin=<origin>`` each (``history()``
  binds nothing);
- ``only=a,b``: revert only these keys (``revert(seq, keys=...)``; default:
  every key changed since).

The seq to go back to is the number input "seq". "Revert" reverts in a
widget callback (the session's run then reads the reverted values: it is not
rerun for them); "Revert after reading" reverts in the body after the keys
were shown (the run showed the older values: one rerun after it); "Revert
from a thread" reverts from a ``threading.Thread`` with no session attached
(joined before the run goes on). Each shows what ``revert`` returned.

Two more multi-key commits, in widget callbacks (they bind nothing): "Write
at once" adds 1 to every key of ``write`` with one ``update(mapping)``;
"Clear" is ``server_state.clear()``.
"""

import threading

import streamlit as st

from server_state import server_state

params = st.query_params
shown = [k for k in params.get("show", "").split(",") if k]
written = [k for k in params.get("write", ",".join(shown)).split(",") if k]
history = int(params.get("history", "0"))
only = [k for k in params.get("only", "").split(",") if k] or None

st.session_state.setdefault("runs", 0)
st.session_state.setdefault("reverted", "-")
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")


def write() -> None:
    for key in written:
        server_state.update(key, lambda n: n + 1, default=0)


def write_at_once() -> None:
    server_state.update({key: server_state.get(key, 0) + 1 for key in written})


def show_reverted(keys: list[str]) -> None:
    st.session_state.reverted = ",".join(keys) or "nothing"


def revert() -> None:
    show_reverted(server_state.revert(int(st.session_state.seq), only))


def revert_from_thread(seq: int) -> None:
    result: list[list[str]] = []
    worker = threading.Thread(target=lambda: result.append(server_state.revert(seq, only)), name="reverter")
    worker.start()  # no ScriptRunContext attached: a write from no session
    worker.join()
    show_reverted(result[0] if result else ["failed"])


st.number_input("seq", min_value=0, step=1, key="seq")
st.button("Write", on_click=write)
st.button("Revert", on_click=revert)
st.button("Write at once", on_click=write_at_once)
st.button("Clear", on_click=server_state.clear)
if st.button("Revert from a thread"):
    revert_from_thread(int(st.session_state.seq))

for key in shown:
    st.markdown(f"{key}={server_state.get(key, 0)} version={server_state.version(key)}")

if st.button("Revert after reading"):
    show_reverted(server_state.revert(int(st.session_state.seq), only))

st.markdown(f"reverted={st.session_state.reverted}")

for commit in server_state.history(limit=history) if history else ():
    st.text(f"commit seq={commit.seq} keys={','.join(commit.keys)} origin={commit.origin}")
