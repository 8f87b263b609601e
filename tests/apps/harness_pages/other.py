"""Second page of tests/apps/harness_app.py."""

import streamlit as st

st.header("Other page")
st.session_state.setdefault("other_clicks", 0)
if st.button("Other button"):
    st.session_state.other_clicks += 1
st.markdown(f"other_clicks={st.session_state.other_clicks}")
