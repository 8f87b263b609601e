"""Who is here (issue 21, part 3), in one process and among replicas sharing
a state: joining, several rooms, leaving, a session whose tab is gone, churn,
a replica that dies, and joining again on every run without a commit.

Sessions are named here (``join(room, name, sid=...)``) and their liveness is
what the test says (``live``): the same calls the facade makes with the id of
the running session and the adapter's answer. The real sessions, tabs and
replicas are in tests/test_presence_servers.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_backend_contract import Replicas, replicas  # noqa: F401  (fixtures)

from server_state import Member, ServerState, ServerStateError, ServerStateTypeError
from server_state._history import keys_of
from server_state._presence import HEARTBEAT, ROOM, Presence
from server_state._store import MemoryStore, store_from_url

WAIT = 15.0  # seconds a replica's death may take to show on a loaded machine before the test fails


def names(members: list[Member]) -> list[str]:
    return [m.name for m in members]


def following(state: ServerState, alive: set[str]) -> Presence:
    """``state``'s presence, with its sessions connected while in ``alive``."""
    presence = state._presence
    presence._live = alive.__contains__
    return presence


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)  # polling the condition: the replicas commit in their own threads


def rooms_left(state: ServerState) -> list[str]:
    return [k for k in state._store.mirror.latest if k.startswith(ROOM)]


# -- in one process, and two replicas of one state ---------------------------------------


def test_sessions_join_rooms_see_each_other_and_leave(replicas: Replicas) -> None:  # noqa: F811
    alive = {"s1", "s2", "s3"}
    a, b = following(replicas.a, alive), following(replicas.b, alive)
    assert names(a.join("lobby", "Ada", sid="s1")) == ["Ada"]
    replicas.settled()
    here = b.join("lobby", "Grace", sid="s2")
    assert names(here) == ["Ada", "Grace"]  # first come first
    assert [m.me for m in here] == [False, True]
    assert here[0].since <= here[1].since
    b.join("kitchen", None, sid="s2")  # one session, several rooms; no name: a guest name
    a.join("kitchen", "Linus", sid="s3")
    replicas.settled()
    (guest, linus) = a.members("kitchen", sid="s3")
    assert guest.name.startswith("Guest ") and not guest.me and linus == ("Linus", linus.since, True)
    assert [r for r, _ in a.rooms().items()] == ["kitchen", "lobby"]

    assert b.leave("lobby", sid="s2") is True
    assert b.leave("lobby", sid="s2") is False  # not in it any more
    replicas.settled()
    for p in (a, b):
        assert names(p.members("lobby")) == ["Ada"]
        assert len(p.members("kitchen")) == 2  # still in the other room
    a.leave("lobby", sid="s1")
    replicas.settled()
    assert a.members("lobby") == [] and "lobby" not in b.rooms()  # an empty room is gone
    assert ROOM + "lobby" not in replicas.b._store.mirror.latest
    assert list(replicas.a) == [] and len(replicas.b) == 0  # rooms are not keys of the app


def test_a_renamed_member_keeps_its_place(replicas: Replicas) -> None:  # noqa: F811
    alive = {"s1", "s2"}
    a = following(replicas.a, alive)
    a.join("lobby", "Ada", sid="s1")
    a.join("lobby", "Bob", sid="s2")
    first = a.members("lobby")[0].since
    assert names(a.join("lobby", "Ada L.", sid="s1")) == ["Ada L.", "Bob"]
    assert a.members("lobby")[0].since == first


def test_joining_again_with_nothing_new_commits_nothing(replicas: Replicas) -> None:  # noqa: F811
    a = following(replicas.a, {"s1"})
    a.join("lobby", "Ada", sid="s1")
    a.join("kitchen", "Ada", sid="s1")
    replicas.settled()
    store = replicas.a._store
    position, version = store.position(), store.version(ROOM + "lobby")
    for _ in range(20):  # a script that reruns, joining on every run
        assert names(a.join("lobby", "Ada", sid="s1")) == ["Ada"]
        a.join("kitchen", " Ada ", sid="s1")  # the same name once its spaces are folded
        a.members("lobby")
    replicas.settled()
    assert store.position() == position and store.version(ROOM + "lobby") == version


def test_a_session_whose_tab_closed_leaves_every_room_in_one_commit(replicas: Replicas) -> None:  # noqa: F811
    alive = {"s1", "s2"}
    a, b = following(replicas.a, alive), following(replicas.b, alive)
    a.join("lobby", "Ada", sid="s1")
    a.join("kitchen", "Ada", sid="s1")
    a.join("lobby", "Bob", sid="s2")
    replicas.settled()
    before = replicas.a._store.position()
    alive.discard("s1")
    a.check()  # what the presence thread does every CHECK_PERIOD
    replicas.settled()
    assert replicas.a._store.position() == before + 1  # one commit for both rooms
    for p in (a, b):
        assert names(p.members("lobby")) == ["Bob"] and p.members("kitchen") == []
    assert a.followed() == 1
    alive.discard("s2")
    a.check()
    assert rooms_left(replicas.a) == [] and a.followed() == 0


def test_the_presence_thread_sends_closed_tabs_out_by_itself() -> None:
    state = ServerState(MemoryStore())
    alive = {"s1", "s2"}
    p = following(state, alive)
    p.join("lobby", "Ada", sid="s1")
    p.join("lobby", "Bob", sid="s2")
    alive.clear()
    wait_until(lambda: p.members("lobby") == [], "the closed tabs did not leave")
    wait_until(lambda: p._thread is None, "the thread did not stop with nobody left")
    state._store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_churn_of_1000_sessions_leaves_nothing_behind(kind: str, tmp_path: Path) -> None:
    store = MemoryStore() if kind == "memory" else store_from_url(f"sqlite:///{tmp_path}/state.db")
    state = ServerState(store)
    alive: set[str] = set()
    p = following(state, alive)
    try:
        for wave in range(4):
            sids = [f"w{wave}-{i}" for i in range(250)]
            alive.update(sids)
            for i, sid in enumerate(sids):
                p.join("lobby", f"user {i}", sid=sid)
                if i % 5 == 0:
                    p.join(f"room {i % 3}", None, sid=sid)
            assert len(p.members("lobby")) == 250
            alive.difference_update(sids)
            p.check()
            assert p.members("lobby") == [] and p.followed() == 0
        assert rooms_left(state) == []
        hidden = [k for k in store.mirror.latest if k.startswith(ROOM)]
        assert hidden == [] and len(state) == 0
    finally:
        p.close()
        store.close()


def test_bad_rooms_and_names_are_refused_saying_what_to_do() -> None:
    state = ServerState(MemoryStore())
    p = following(state, {"s1"})
    with pytest.raises(ServerStateTypeError, match="the room must be a str"):
        p.join(3, None, sid="s1")  # type: ignore[arg-type]
    with pytest.raises(ServerStateTypeError, match="room name is empty"):
        p.join("  ", None, sid="s1")
    with pytest.raises(ServerStateTypeError, match=r"presence\('lobby', name=\.\.\.\): name must be a str"):
        p.join("lobby", 7, sid="s1")  # type: ignore[arg-type]
    with pytest.raises(ServerStateTypeError, match="keep it to 200"):
        p.join("lobby", "x" * 201, sid="s1")
    with pytest.raises(ServerStateError, match=r"no session is running here.*join=False"):
        state.presence("lobby")  # not in a session: a clear error, not a member of nobody
    assert state.presence("lobby", join=False) == []
    assert rooms_left(state) == []


# -- a replica that dies ------------------------------------------------------------------


@pytest.fixture(params=["fakeredis", "sqlite"])
def make_replica(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], ServerState]]:
    """Replicas of one state, each with its own name and a lease of 0.6 s."""
    made: list[ServerState] = []
    if request.param == "fakeredis":
        import fakeredis

        server = fakeredis.FakeServer()

        def make(name: str) -> ServerState:
            clients = (fakeredis.FakeRedis(server=server), fakeredis.FakeRedis(server=server))
            url = "redis://fakeredis"
            store = store_from_url(url, clients=clients, block_ms=50, replica=name, lease_ttl=0.6)
            made.append(ServerState(store))
            return made[-1]
    else:

        def make(name: str) -> ServerState:
            store = store_from_url(f"sqlite:///{tmp_path}/state.db", replica=name, lease_ttl=0.6)
            made.append(ServerState(store))
            return made[-1]

    yield make
    for state in made:
        state._presence.close()
        state._store.close()


def test_a_dead_replicas_members_are_taken_out_once_by_the_survivors(
    make_replica: Callable[[str], ServerState],
) -> None:
    dying, b, c = make_replica("dying"), make_replica("b"), make_replica("c")
    alive = {"d1", "d2", "b1", "c1"}
    pd, pb, pc = following(dying, alive), following(b, alive), following(c, alive)
    pd.join("lobby", "Dee", sid="d1")
    pd.join("kitchen", "Dot", sid="d2")
    pb.join("lobby", "Bea", sid="b1")
    pc.join("lobby", "Cy", sid="c1")
    wait_until(lambda: len(pb.members("lobby")) == 3 and len(pc.members("kitchen")) == 1, "joins")
    assert set(pb.heartbeats()) == {"dying", "b", "c"}
    seq = b._store.position()
    # The replica dies: its thread stops refreshing the heartbeat, its store stops.
    pd.close()
    dying._store.close()
    for p in (pb, pc):
        wait_until(lambda p=p: names(p.members("lobby")) == ["Bea", "Cy"], "the dead replica's members")
        wait_until(lambda p=p: "kitchen" not in p.rooms(), "the dead replica's room")
    wait_until(lambda: "dying" not in pb.heartbeats(), "the heartbeat's expiry")
    # The survivors both saw the heartbeat expire; one commit took the members out.
    # (Commits of the library's own keys alone are kept aside from the listed history.)
    mirror = b._store.mirror
    with mirror.lock:
        kept = mirror.history.newer(seq, mirror.seq)
    removals = [record for record in kept if any(key.startswith(ROOM) for key in keys_of(record))]
    assert len(removals) == 1, [(r[0], r[2], keys_of(r)) for r in removals]
    assert set(keys_of(removals[0])) == {ROOM + "lobby", ROOM + "kitchen"}
    assert HEARTBEAT + "b" in b._store.mirror.latest  # the survivors keep theirs


def test_a_replica_starting_takes_out_the_members_of_one_that_died_unseen(
    make_replica: Callable[[str], ServerState],
) -> None:
    old = make_replica("old")
    po = following(old, {"o1"})
    po.join("lobby", "Olga", sid="o1")
    po.close()  # it dies, and nobody is there to see its heartbeat expire
    old._store.delete(HEARTBEAT + "old")  # as if it had expired while no replica ran
    old._store.close()
    new = make_replica("new")
    pn = following(new, {"n1"})
    assert names(pn.join("lobby", "Nia", sid="n1")) in (["Olga", "Nia"], ["Nia"])
    wait_until(lambda: names(pn.members("lobby")) == ["Nia"], "the start sweep")
