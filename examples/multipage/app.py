"""A multipage app whose pages share server_state.

Try: `streamlit run examples/multipage/app.py`, open two tabs, leave one on
"Board" and click "Increment" on "Counter" in the other. The Board tab shows the
new count and stays on Board: a pushed rerun keeps each tab on its own page.

Keys:
    "count"  int, shown on both pages, incremented on "Counter".
    "note"   str, set on "Board".
"""

import streamlit as st

# Page files live in views/, not pages/: a pages/ folder next to the entry file
# is Streamlit's older automatic navigation, which st.navigation replaces.
page = st.navigation(
    [
        st.Page("views/counter.py", title="Counter", default=True),
        st.Page("views/board.py", title="Board"),
    ]
)
page.run()
