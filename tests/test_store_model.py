"""A hypothesis state machine: the state against a plain model, on every
backend (memory; Redis through fakeredis, and briefly a real redis-server),
through the public API.

The model is a dict of key -> plain value plus each key's last seen version.
A write is a real change iff the new value differs from the stored one, where
"equal" means indistinguishable to a reader: equal with the same types all
the way down (``1``, ``1.0`` and ``True`` differ), dict order and the sign of
zero included; a key's version strictly increases on each real change and
stays put otherwise. Every snapshot keeps showing the model as it was. On Redis a second replica
follows: once it has taken in the writer's last commit, it reads the model too.
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from pyrsistent import PMap

from server_state import ServerState, Snapshot, thaw
from server_state._store import store_from_url

KEYS = ["a", "b", "c", "d"]
NO_DEFAULT = object()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=10),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=3), children, max_size=4),
    ),
    max_leaves=12,
)
# Values equal under == but of other types: writing one over another is a change.
twins = st.sampled_from(
    [0, 1, 0.0, 1.0, -0.0, False, True, [1], [1.0], [True], {"x": 1}, {"x": True}, [[0]], [[False]]]
)
keys = st.sampled_from(KEYS)
pairs = st.sampled_from([(a, b) for a in KEYS for b in KEYS if a != b])


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (the store's notion of 'unchanged')."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):  # order is visible to a reader
        return list(a) == list(b) and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, float):  # so is the sign of zero
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def scribble(value: Any) -> None:
    """Mutate a caller's container after it was written (the store must not care)."""
    if isinstance(value, list):
        value.append("scribble")
        for item in value[:-1]:
            scribble(item)
    elif isinstance(value, dict):
        for item in list(value.values()):
            scribble(item)
        value["scribble"] = 1


# Pure functions for update(); each gives the same result on a plain value and
# on its stored (frozen) form.
UPDATE_FNS: dict[str, Callable[[Any], Any]] = {
    "identity": lambda v: v,
    "equal copy": thaw,
    "wrap in list": lambda v: [v, 1],
    "wrap in dict": lambda v: {"v": v},
    "constant": lambda v: 0,
    "increment int": lambda v: v + 1 if type(v) is int else v,
    "append": lambda v: [*v, None] if isinstance(v, list) else v,
}


def as_int(value: Any) -> int:
    return value if type(value) is int else 0


class StoreMachine(RuleBasedStateMachine):
    # The states one example runs on: the writer, then the replicas that follow it.
    make_states: ClassVar[Callable[[], list[ServerState]]] = staticmethod(lambda: [ServerState()])

    def __init__(self) -> None:
        super().__init__()
        self.state, *self.followers = type(self).make_states()
        self.model: dict[str, Any] = {}
        self.versions: dict[str, int] = dict.fromkeys(KEYS, 0)
        self.snapshots: list[tuple[Snapshot, dict[str, Any]]] = []

    def committed(self, changed: set[str]) -> None:
        """After one operation: exactly the keys the model says changed advanced."""
        for key in KEYS:
            now = self.state.version(key)
            if key in changed:
                assert now > self.versions[key], (key, now, self.versions[key])
            else:
                assert now == self.versions[key], (key, now, self.versions[key])
            self.versions[key] = now

    # -- rules ---------------------------------------------------------------------

    @rule(key=keys, value=values)
    def assign(self, key: str, value: Any) -> None:
        expected = copy.deepcopy(value)
        self.state[key] = value
        scribble(value)
        changed = key not in self.model or not same(self.model[key], expected)
        if changed:
            self.model[key] = expected
        self.committed({key} if changed else set())

    @rule(key=keys, value=twins)
    def assign_twin(self, key: str, value: Any) -> None:
        self.assign(key, value)

    @rule(key=keys)
    def rewrite_equal(self, key: str) -> None:
        if key in self.model:
            self.state[key] = copy.deepcopy(self.model[key])
            self.state[key] = thaw(self.state[key])
            self.state[key] = self.state[key]
        self.committed(set())

    @rule(key=keys)
    def delete(self, key: str) -> None:
        if key in self.model:
            del self.state[key]
            del self.model[key]
            self.committed({key})
        else:
            with pytest.raises(KeyError):
                del self.state[key]
            self.committed(set())

    @rule(
        key=keys, fn_name=st.sampled_from(sorted(UPDATE_FNS)), default=st.one_of(st.just(NO_DEFAULT), values)
    )
    def update(self, key: str, fn_name: str, default: Any) -> None:
        fn = UPDATE_FNS[fn_name]
        kwargs = {} if default is NO_DEFAULT else {"default": copy.deepcopy(default)}
        if key not in self.model and default is NO_DEFAULT:
            with pytest.raises(KeyError):
                self.state.update(key, fn)
            self.committed(set())
            return
        if key in self.model:
            old = self.model[key]
            new = fn(copy.deepcopy(old))
            changed = not same(old, new)
        else:
            new = fn(copy.deepcopy(default))
            changed = True
        result = self.state.update(key, fn, **kwargs)
        assert same(thaw(result), new if changed else self.model[key]), (result, new)
        if changed:
            self.model[key] = copy.deepcopy(new)
        self.committed({key} if changed else set())

    @rule(pair=pairs, amount=st.integers(min_value=-3, max_value=3))
    def transfer(self, pair: tuple[str, str], amount: int) -> None:
        src, dst = pair

        def fn(m: PMap) -> PMap:
            return m.set(src, as_int(m.get(src)) - amount).set(dst, as_int(m.get(dst)) + amount)

        before = {k: self.model.get(k, NO_DEFAULT) for k in (src, dst)}
        after = {src: as_int(self.model.get(src)) - amount, dst: as_int(self.model.get(dst)) + amount}
        self.state.transact(fn)
        changed = {k for k in (src, dst) if before[k] is NO_DEFAULT or not same(before[k], after[k])}
        self.model.update(after)
        self.committed(changed)

    @rule(key=keys)
    def transact_remove(self, key: str) -> None:
        self.state.transact(lambda m: m.discard(key))
        changed = {key} if key in self.model else set()
        self.model.pop(key, None)
        self.committed(changed)

    @rule()
    def take_snapshot(self) -> None:
        self.snapshots.append((self.state.snapshot(), copy.deepcopy(self.model)))

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def reads_equal_the_model(self) -> None:
        s = self.state
        assert len(s) == len(self.model)
        assert sorted(s) == sorted(self.model)
        assert sorted(s.keys()) == sorted(self.model)
        for key in KEYS:
            assert (key in s) == (key in self.model)
            if key in self.model:
                assert same(thaw(s[key]), self.model[key]), (key, s[key], self.model[key])
                assert same(thaw(s.get(key)), self.model[key])
                assert same(thaw(s.peek(key)), self.model[key])
            else:
                assert s.get(key, NO_DEFAULT) is NO_DEFAULT
                with pytest.raises(KeyError):
                    s[key]

    @invariant()
    def the_store_keeps_its_own_invariant(self) -> None:
        # The live dict, the pending writes and the persistent map agree
        # (the invariant stated in server_state/_store.py).
        self.state._store.mirror.check_invariants()

    @invariant()
    def versions_only_move_in_rules(self) -> None:
        for key in KEYS:
            assert self.state.version(key) == self.versions[key]

    @invariant()
    def followers_read_the_model_once_they_have_the_last_commit(self) -> None:
        last = self.state._store.position()
        for follower in self.followers:
            deadline = time.monotonic() + 10
            while follower._store.position() < last:
                assert time.monotonic() < deadline, (
                    f"a follower stayed at {follower._store.position()} < {last}"
                )
                time.sleep(0.002)  # the follower thread brings it; nothing to wait on from here
            assert sorted(follower) == sorted(self.model)
            for key, value in self.model.items():
                assert same(thaw(follower.peek(key)), value), (key, follower.peek(key), value)

    def teardown(self) -> None:
        for state in (self.state, *self.followers):
            state._store.close()

    @invariant()
    def snapshots_show_the_model_as_it_was(self) -> None:
        for snap, then in self.snapshots:
            assert sorted(snap) == sorted(then)
            assert len(snap) == len(then)
            for key, value in then.items():
                assert same(thaw(snap[key]), value), (key, snap[key], value)


def _settings(examples: int, steps: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


StoreMachine.TestCase.settings = _settings(50, 30)
TestStoreModel = StoreMachine.TestCase


def _redis_pair(url: str, **options: Any) -> Callable[[], list[ServerState]]:
    def make() -> list[ServerState]:
        namespace = f"model-{uuid.uuid4().hex[:8]}"  # each example starts from an empty state
        return [ServerState(store_from_url(url, namespace=namespace, **options)) for _ in range(2)]

    return make


def test_the_model_holds_on_redis_through_fakeredis() -> None:
    import fakeredis

    def make() -> list[ServerState]:
        server = fakeredis.FakeServer()
        return [
            ServerState(
                store_from_url(
                    "redis://fakeredis",
                    clients=(fakeredis.FakeRedis(server=server), fakeredis.FakeRedis(server=server)),
                    block_ms=20,
                )
            )
            for _ in range(2)
        ]

    machine = type("OnFakeRedis", (StoreMachine,), {"make_states": staticmethod(make)})
    run_state_machine_as_test(machine, settings=_settings(20, 25))


def test_the_model_holds_on_a_redis_server(redis_url: str) -> None:
    machine = type(
        "OnRedis", (StoreMachine,), {"make_states": staticmethod(_redis_pair(redis_url, block_ms=200))}
    )
    run_state_machine_as_test(machine, settings=_settings(5, 25))


def test_the_model_holds_on_sqlite(tmp_path: Path) -> None:
    """Two processes' worth of stores on one file (two mirrors, two
    connections, two followers); each example on a new file."""

    def make() -> list[ServerState]:
        url = f"sqlite:///{tmp_path}/model-{uuid.uuid4().hex[:8]}.db"
        return [ServerState(store_from_url(url)) for _ in range(2)]

    machine = type("OnSqlite", (StoreMachine,), {"make_states": staticmethod(make)})
    run_state_machine_as_test(machine, settings=_settings(20, 25))
