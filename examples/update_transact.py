"""Atomic writes: update() for one key, transact() for several.

Try: open two tabs and click "Transfer alice → bob" in both, as fast as you
like. Balances change together or not at all, so "Total" is always 200. "Add
one" in both tabs never loses a click.

Keys:
    "alice", "bob"  int balances, 100 each to start.
    "clicks"        int, how many times anyone clicked "Add one".
"""

import streamlit as st

from server_state import server_state

st.title("update() and transact()")

# One transaction creates both accounts or neither. Unchanged keys return the same
# map, so after the first visit this commits nothing and reruns nobody.
server_state.transact(lambda s: s.set("alice", s.get("alice", 100)).set("bob", s.get("bob", 100)))


def transfer() -> None:
    amt = st.session_state.amount
    # fn sees the whole state at one commit and may be retried, so it only builds:
    # no overdraft, judged against the balance it is actually applied to.
    server_state.transact(
        lambda s: s if s["alice"] < amt else s.set("alice", s["alice"] - amt).set("bob", s["bob"] + amt)
    )


def add_one() -> None:
    server_state.update("clicks", lambda n: n + 1, default=0)


# One snapshot: both balances from the same instant, so a transfer landing
# between two separate reads can't show a total of 190 or 210.
snap = server_state.snapshot("alice", "bob")
alice, bob = snap["alice"], snap["bob"]
col_a, col_b, col_t = st.columns(3)
col_a.metric("alice", alice)
col_b.metric("bob", bob)
col_t.metric("Total", alice + bob)

amount = st.number_input("Amount", min_value=0, value=10, step=1, key="amount")
st.button("Transfer alice → bob", on_click=transfer, disabled=amount > alice)
if amount > alice:
    st.caption("alice has too little for that.")

st.divider()
st.button("Add one", on_click=add_one)
st.write(f"Clicks: {server_state.get('clicks', 0)}")
