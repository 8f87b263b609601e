"""Typed keys: a shared counter and a shared guest list, each declared once
with its type and a validator.

Try: open two tabs. "+1"/"-1" in either changes the count in both; the count
never goes below zero, whoever clicks. Add guests from both tabs: a name
already on the list, a blank one, or a tenth guest is refused with a message,
and the list is left as it was. `mypy --strict examples/typed_keys.py` passes:
`count.get()` is an `int`, `guests.get()` a `list[str]`.

Keys:
    "typed_count"   int >= 0.
    "typed_guests"  list of distinct, non-blank names, at most MAX_GUESTS.
"""

from __future__ import annotations

import streamlit as st

from server_state import Key, ServerStateValidationError, server_state

MAX_GUESTS = 9


def valid_guests(names: list[str]) -> bool:
    """Every write of "typed_guests" must pass this, or nothing is written."""
    if len(names) > MAX_GUESTS:
        raise ValueError(f"the list is full ({MAX_GUESTS} guests)")
    if len(set(names)) != len(names):
        raise ValueError("that name is already on the list")
    return all(name.strip() for name in names)


# Declared on every run: the same declaration gives the same handle. The
# declarations hold for every write of these keys, also `server_state[...] = ...`.
count: Key[int] = server_state.key("typed_count", int, default=0, validator=lambda n: n >= 0)
guests: Key[list[str]] = server_state.key("typed_guests", list[str], default=[], validator=valid_guests)


def step(delta: int) -> None:
    try:
        count.update(lambda n: n + delta)  # atomic; retried if another tab got in first
    except ServerStateValidationError:
        st.session_state.problem = "The count cannot go below zero."
    else:
        st.session_state.problem = ""


def add_guest() -> None:
    name = str(st.session_state.guest).strip()
    try:
        guests.update(lambda names: [*names, name])  # a list in, a (read-only) list back
    except ServerStateValidationError as exc:
        reason = exc.__cause__ or "a guest needs a name"
        st.session_state.problem = f"{name or 'A blank name'!s} was not added: {reason}."
    else:
        st.session_state.problem = ""
        st.session_state.guest = ""  # allowed here: callbacks run before the widget exists


st.title("Typed keys")

left, right, shown = st.columns(3)
left.button("+1", on_click=step, args=(1,))
right.button("-1", on_click=step, args=(-1,))
shown.metric("Count", count.get())  # binds: this tab reruns when anyone changes it

st.divider()
st.text_input("Guest", key="guest")
st.button("Add guest", on_click=add_guest)
if st.session_state.get("problem"):
    st.warning(st.session_state.problem)

names = guests.get()
st.metric("Guests", f"{len(names)} / {MAX_GUESTS}")
for name in names:
    st.markdown(f"- {name}")
if names and st.button("Clear the list"):
    guests.set([])
    st.rerun()
