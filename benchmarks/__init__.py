"""Benchmarks of ``server_state`` against streamlit-server-state 0.20.2 (upstream).

``python -m benchmarks.run [--full|--smoke] [--json out.json]`` prints one
table. Both libraries are measured in the same run: the in-session
microbenchmarks in one real Streamlit session (``apps/micro_app.py``), the
cross-session ones against two real servers side by side, writes alternating.
"""
