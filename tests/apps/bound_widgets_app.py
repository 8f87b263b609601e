"""One widget of each kind bound to a shared key with server_state.widget,
a typed key whose validator refuses some edits, a data editor over a shared
DataFrame, and a bound box inside a fragment. Each line ``<key>=<value>``
shows what the widget call returned (what the page shows)."""

import datetime

import pandas as pd
import streamlit as st

from server_state import server_state

st.session_state.setdefault("runs", 0)
st.session_state.runs += 1
st.markdown(f"runs={st.session_state.runs}")

COLOURS = ["red", "green", "blue"]
WIDGETS = {
    "text": (st.text_input, "Text", "", {}),
    "area": (st.text_area, "Area", "", {}),
    "number": (st.number_input, "Number", 0, {"step": 1}),
    "slider": (st.slider, "Slider", 5, {"min_value": 0, "max_value": 100}),
    "select_slider": (st.select_slider, "Select slider", "red", {"options": COLOURS}),
    "selectbox": (st.selectbox, "Selectbox", "red", {"options": COLOURS}),
    "radio": (st.radio, "Radio", "red", {"options": COLOURS}),
    "checkbox": (st.checkbox, "Checkbox", False, {}),
    "toggle": (st.toggle, "Toggle", False, {}),
    "multiselect": (st.multiselect, "Multiselect", [], {"options": COLOURS}),
    "date": (st.date_input, "Date", datetime.date(2024, 1, 1), {}),
    "time": (st.time_input, "Time", datetime.time(9, 0), {}),
    "colour": (st.color_picker, "Colour", "#000000", {}),
}
for key, (widget, label, default, options) in WIDGETS.items():
    value = server_state.widget(widget, label, key=key, default=default, **options)
    st.markdown(f"{key}={value!r}")

count = server_state.key("count", int, default=0, validator=lambda n: n >= 0)
st.markdown(f"count={server_state.widget(st.number_input, 'Count', key=count, step=1)!r}")

TODO = pd.DataFrame({"done": [False, False, False], "task": ["milk", "eggs", "bread"]})
table = server_state.widget(st.data_editor, key="todo", default=TODO, num_rows="dynamic")
st.markdown("todo=" + "; ".join(f"{row.task}:{row.done}" for row in table.itertuples()))


@st.fragment
def note() -> None:
    st.markdown(f"note={server_state.widget(st.text_input, 'Note', key='note', default='')!r}")


note()
