"""Checked by ``mypy --strict`` in tests/test_typed_keys.py, which asserts
that the one wrong-type use below is its only error. Never imported."""

from __future__ import annotations

from server_state import server_state

count = server_state.key("typing.wrong.count", int, default=0)
count.set(count.get() + 1)
count.set("x")
