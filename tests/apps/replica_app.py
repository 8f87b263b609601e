"""A page for tests/test_replicas.py, run as several ``streamlit run``
replicas sharing one Redis (``SERVER_STATE_URL``).

Query string:

- ``k=<key>``: the shared key this session shows and writes (default ``k``),
  so each test uses keys of its own on the same replicas;
- ``read=body`` (the default) shows ``k`` in the body before the gate,
  ``read=late`` after it, ``read=fragment`` only inside a fragment,
  ``read=none`` nowhere;
- ``gate=<name>``: a run waits while ``$REPLICA_GATE_DIR/<name>.armed``
  exists and ``<name>.open`` does not (the test holds a run open from
  another process, with no sleep in the test);
- ``pingpong=<a|b>``: every run reads ``<k>.<the other>`` and writes
  ``<k>.<this one>`` = that + 1 (two such sessions rerun each other);
  ``pingpong=self`` reads ``k`` and writes ``k`` + 1 (tests/apps/loop_app.py).

Buttons "Write" and "Silent write" (``with no_rerun:``) add 1 to ``k`` in a
callback, so the clicking session reads the new value in its own run and is
not rerun for it. "Add" counts clicks in ``st.session_state`` (a click
swallowed by an interrupted run would be lost).
"""

import os
import time
from pathlib import Path

import streamlit as st

from server_state import no_rerun, server_state

params = st.query_params
key = params.get("k", "k")
read = params.get("read", "body")
gate = params.get("gate")
pingpong = params.get("pingpong")

st.session_state.setdefault("runs", 0)
st.session_state.setdefault("clicks", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")


def write() -> None:
    server_state.update(key, lambda n: n + 1, default=0)


def silent_write() -> None:
    with no_rerun:
        server_state.update(key, lambda n: n + 1, default=0)


st.button("Write", on_click=write)
st.button("Silent write", on_click=silent_write)
st.button("Refresh")

if pingpong in ("a", "b"):
    other = "b" if pingpong == "a" else "a"
    seen = server_state.get(f"{key}.{other}", 0)
    st.markdown(f"seen={seen}")
    server_state[f"{key}.{pingpong}"] = seen + 1  # a new value on every run
elif pingpong == "self":
    seen = server_state.get(key, 0)
    st.markdown(f"seen={seen}")
    server_state[key] = seen + 1

if read == "body":
    st.markdown(f"value={server_state.get(key, 0)}")

if gate:
    gate_dir = Path(os.environ["REPLICA_GATE_DIR"])
    deadline = time.monotonic() + 60
    while (
        (gate_dir / f"{gate}.armed").exists()
        and not (gate_dir / f"{gate}.open").exists()
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)  # polling a file: the test is another process

if st.button("Add"):
    st.session_state.clicks += 1
st.markdown(f"clicks={st.session_state.clicks}")

if read == "late":
    st.markdown(f"value={server_state.get(key, 0)}")

if read == "fragment":

    @st.fragment
    def shown() -> None:
        st.session_state.setdefault("fragment_runs", 0)
        st.session_state.fragment_runs += 1
        st.markdown(f"fragment_runs={st.session_state.fragment_runs}")
        st.markdown(f"value={server_state.get(key, 0)}")

    shown()
