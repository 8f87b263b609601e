"""Checked by ``mypy --strict`` in tests/test_typed_keys.py: what the typed
handles give a type checker. Never imported by the tests."""

from __future__ import annotations

from typing import assert_type

from server_state import Key, server_state

count = server_state.key("typing.count", int, default=0)
assert_type(count, Key[int])
assert_type(count.get(), int)
assert_type(count.peek(), int)
assert_type(count.update(lambda n: n + 1), int)
assert_type(count.version, int)
count.set(3)

names = server_state.key("typing.names", list[str], default=[], validator=lambda v: len(v) < 10)
assert_type(names, Key[list[str]])
assert_type(names.update(lambda v: [*v, "ada"]), list[str])

either = server_state.key("typing.either", (int, str), default=0)
assert_type(either, Key[int | str])

user: Key[str | None] = server_state.key("typing.user", str | None, default=None)
assert_type(user.get(), str | None)
user.set(None)
