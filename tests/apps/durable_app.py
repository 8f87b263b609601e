"""A page for tests/test_sqlite_servers.py: values of several kinds written
by clicks, shown with their versions and the history, so that a test can
compare what a session saw before its server was killed with what a session
of the restarted server sees.

Query string: ``k=<prefix>``, the keys are ``<prefix>.count`` (an int),
``<prefix>.chat`` (a list of chat messages), ``<prefix>.when`` (a datetime
in a ``ZoneInfo`` zone), ``<prefix>.table`` (a DataFrame) and
``<prefix>.gone`` (set, then deleted: its version outlives it).

Buttons, each one commit in a widget callback: "Increment" adds 1 to the
count (``update``); "Fill chat" writes 70 messages (a list long enough to be
kept item by item) and ``gone``; "Say" appends one message; "Stamp" writes
the datetime and the table together (``update(mapping)``, one commit of two
keys); "Drop" deletes ``gone``.

Each key is one text line ``<key>=<value> version=<version>`` (the value
described exactly: a DataFrame by its dtypes and its JSON); each commit of
``server_state.history()`` that changed keys of this prefix is one line
``commit seq=<seq> keys=<keys> origin=<origin> | <key>: <before> -> <after>``.
"""

import datetime
import zoneinfo
from typing import Any

import pandas as pd
import streamlit as st

from server_state import server_state

prefix = st.query_params.get("k", "d")
count, chat, when, table, gone = (f"{prefix}.{name}" for name in ("count", "chat", "when", "table", "gone"))
KEYS = (count, chat, when, table, gone)
PARIS = zoneinfo.ZoneInfo("Europe/Paris")

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")


def message(n: int) -> dict[str, str]:
    return {"role": "user" if n % 2 else "assistant", "text": f"message {n}"}


def increment() -> None:
    server_state.update(count, lambda n: n + 1, default=0)


def fill_chat() -> None:
    server_state.update({chat: [message(n) for n in range(70)], gone: "soon deleted"})


def say() -> None:
    server_state.update(chat, lambda messages: [*messages, message(len(messages))], default=[])


def stamp() -> None:
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "x": [0.5, 1.5, 2.5],
            "name": ["a", "b", "c"],
            "at": pd.date_range("2026-03-29 01:00", periods=3, freq="h", tz=PARIS),
        }
    )
    moment = datetime.datetime(2026, 3, 29, 3, 30, 15, 123456, tzinfo=PARIS)
    server_state.update({when: moment, table: frame})


def drop() -> None:
    del server_state[gone]


def describe(value: Any) -> str:
    if isinstance(value, pd.DataFrame):
        dtypes = ",".join(f"{c}:{t}" for c, t in value.dtypes.astype(str).items())
        return f"DataFrame[{dtypes}] {value.to_json(orient='split', date_format='iso', date_unit='us')}"
    return repr(value)


st.button("Increment", on_click=increment)
st.button("Fill chat", on_click=fill_chat)
st.button("Say", on_click=say)
st.button("Stamp", on_click=stamp)
st.button("Drop", on_click=drop)

for key in KEYS:
    st.text(f"{key}={describe(server_state.get(key))} version={server_state.version(key)}")

for commit in server_state.history():
    mine = [k for k in commit.keys if k.startswith(prefix + ".")]
    if mine:
        changes = "; ".join(f"{k}: {describe(commit.before(k))} -> {describe(commit.after(k))}" for k in mine)
        st.text(f"commit seq={commit.seq} keys={','.join(commit.keys)} origin={commit.origin} | {changes}")
