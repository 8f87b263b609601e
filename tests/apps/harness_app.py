"""Plain-Streamlit app for tests/test_harness.py (no server_state).

It exercises each protocol feature the harness must handle: a button counter
in session_state, text/slider/checkbox/selectbox echoes, a fragment with its
own button and run counter, and a 2-page ``st.navigation``.
"""

import streamlit as st


def home() -> None:
    st.session_state.setdefault("clicks", 0)
    st.session_state.setdefault("body_runs", 0)
    st.session_state.body_runs += 1
    st.title("Harness home")
    if st.button("Increment"):
        st.session_state.clicks += 1
    st.markdown(f"clicks={st.session_state.clicks}")
    st.markdown(f"body_runs={st.session_state.body_runs}")

    name = st.text_input("Name", value="world")
    st.markdown(f"hello={name}")
    level = st.slider("Level", min_value=0, max_value=10, value=3)
    st.markdown(f"level={level}")
    ratio = st.slider("Ratio", min_value=0.0, max_value=1.0, value=0.5)
    st.markdown(f"ratio={ratio}")
    agree = st.checkbox("Agree")
    st.markdown(f"agree={agree}")
    color = st.selectbox("Color", ["red", "green", "blue"])
    st.markdown(f"color={color}")
    qty = st.number_input("Qty", min_value=0, max_value=100, value=1)
    st.markdown(f"qty={qty}")
    size = st.radio("Size", ["S", "M", "L"], index=1)
    st.markdown(f"size={size}")
    st.caption("caption text")
    st.metric("Temp", "21 C")

    @st.fragment
    def frag() -> None:
        st.session_state.setdefault("frag_clicks", 0)
        st.session_state.setdefault("frag_runs", 0)
        st.session_state.frag_runs += 1
        if st.button("Frag increment"):
            st.session_state.frag_clicks += 1
        st.markdown(f"frag_clicks={st.session_state.frag_clicks}")
        st.markdown(f"frag_runs={st.session_state.frag_runs}")

    frag()

    with st.form("f"):
        note = st.text_input("Note")
        submitted = st.form_submit_button("Save")
    if submitted:
        st.session_state.note = note
    st.markdown(f"note={st.session_state.get('note', '')}")


pg = st.navigation(
    [
        st.Page(home, title="Home", url_path="home", default=True),
        st.Page("harness_pages/other.py", title="Other", url_path="other"),
    ]
)
st.markdown("common=yes")
pg.run()
