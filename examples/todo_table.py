"""A to-do table shared by every session, edited in st.data_editor.

Try: open two tabs. Tick a box in one and rename a task in the other at the
same moment: both edits stay. Each tab's edit is applied cell by cell to the
current shared table (server_state.widget does it inside update(), which is
atomic), never by writing back the table that tab last saw.

Key:
    "todo"   a pandas DataFrame with columns done (bool), task, owner (str).
"""

import pandas as pd
import streamlit as st

from server_state import server_state

st.title("Shared to-do list")

START = pd.DataFrame(
    {
        "done": [False, False, True],
        "task": ["Write the agenda", "Book the room", "Send the invite"],
        "owner": ["ann", "bob", "ann"],
    }
)

todo = server_state.widget(
    st.data_editor,
    key="todo",
    default=START,
    num_rows="dynamic",  # add rows at the bottom, delete with the row's checkbox
    hide_index=True,
    column_config={"done": st.column_config.CheckboxColumn("done", default=False)},
)

left = int((~todo["done"].fillna(False).astype(bool)).sum())
st.caption(f"{left} of {len(todo)} left")
