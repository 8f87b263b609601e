"""What the Redis tests rely on in ``redis_support`` (and the fixtures), checked
against a real redis-server: where it listens, restarts, a hung server, cut
connections, and that nothing is left running."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis_support
from redis_support import ConnectionKiller, RedisServer, RedisServerError, require_redis_server


def _listening_tcp(pid: int) -> set[tuple[str, str, int]]:
    """(table, address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            if table == "tcp":
                addr = socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr_hex)[::-1])
            else:
                raw = bytes.fromhex(addr_hex)
                addr = socket.inet_ntop(
                    socket.AF_INET6, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                )
            found.add((table, addr, int(port_hex, 16)))
    return found


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A RedisServer made (not started) here, closed after the test."""
    require_redis_server()
    server = RedisServer()
    try:
        yield server
    finally:
        server.close()


# -- where it listens ----------------------------------------------------------


def test_listens_on_127_0_0_1_only_at_its_port(fresh_redis: RedisServer) -> None:
    assert fresh_redis.pid is not None
    assert _listening_tcp(fresh_redis.pid) == {("tcp", "127.0.0.1", fresh_redis.port)}
    assert fresh_redis.url == f"redis://127.0.0.1:{fresh_redis.port}/0"
    with redis.Redis.from_url(fresh_redis.url, socket_timeout=5) as r:
        assert r.ping()
        config = r.config_get("*")
    assert config["bind"] == "127.0.0.1"
    assert config["port"] == str(fresh_redis.port)
    assert config["protected-mode"] == "yes"
    assert config["save"] == ""
    assert config["appendonly"] == "no"
    assert config["maxmemory-policy"] == "noeviction"
    assert config["enable-debug-command"] == "local"
    assert config["dir"] == str(fresh_redis.dir)


def test_unix_url_reaches_the_same_server(fresh_redis: RedisServer) -> None:
    assert fresh_redis.unix_url == f"unix://{fresh_redis.unix_path}?db=0"
    assert stat.S_IMODE(os.stat(fresh_redis.unix_path).st_mode) == 0o700
    with (
        redis.Redis.from_url(fresh_redis.unix_url, socket_timeout=5) as over_unix,
        redis.Redis.from_url(fresh_redis.url, socket_timeout=5) as over_tcp,
    ):
        over_tcp.set("k", "v")
        assert over_unix.get("k") == b"v"
        assert over_unix.connection_pool.connection_kwargs["db"] == 0
    unix_client = fresh_redis.client(unix=True)
    assert unix_client.get("k") == b"v"


def test_debug_command_is_allowed_locally(fresh_redis: RedisServer) -> None:
    assert fresh_redis.client().execute_command("DEBUG", "SLEEP", "0") in (b"OK", "OK", True)


def test_log_has_the_command_line_and_the_server_output(fresh_redis: RedisServer) -> None:
    log = fresh_redis.log_text()
    assert f"--port {fresh_redis.port}" in log
    assert "Ready to accept connections" in log


@pytest.mark.parametrize("run", [1, 2])  # whichever runs second checks the emptying
def test_the_shared_server_is_empty_in_each_test(redis_url: str, redis_server: RedisServer, run: int) -> None:
    assert redis_url == redis_server.url
    with redis.Redis.from_url(redis_url, socket_timeout=5) as r:
        assert r.dbsize() == 0
        r.set(f"left-behind-by-{run}", "1")


# -- starting --------------------------------------------------------------------


def test_a_taken_port_is_replaced_by_another(own_server: RedisServer) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        own_server.port = taken  # as if free_port() had returned it and someone took it since
        own_server.start()
        assert own_server.port != taken
        assert own_server.client().ping()
        assert "Address already in use" in own_server.log_text()


def test_a_taken_fixed_port_is_an_error_with_the_log() -> None:
    require_redis_server()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server = RedisServer(port=taken)
        try:
            with pytest.raises(RedisServerError, match=rf"127\.0\.0\.1:{taken} \(port taken\)") as info:
                server.start()
            assert "Address already in use" in str(info.value)  # the log tail
            assert server.pid is not None and _gone(server.pid)
        finally:
            server.close()


def test_require_redis_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_support, "redis_server_path", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(
        pytest.fail.Exception, match=r"redis-server not found.*make test.*apt-get install redis-server"
    ):
        require_redis_server()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"make test.*apt-get install redis-server"):
        require_redis_server()
    monkeypatch.undo()
    if redis_support.redis_server_path() is not None:
        assert os.access(require_redis_server(), os.X_OK)


# -- restart ---------------------------------------------------------------------


def test_restart_keeps_the_port_and_the_data_is_gone(fresh_redis: RedisServer) -> None:
    port, pid, unix = fresh_redis.port, fresh_redis.pid, fresh_redis.unix_url
    r = fresh_redis.client()
    r.set("k", "v")
    fresh_redis.restart()
    assert (fresh_redis.port, fresh_redis.unix_url) == (port, unix)
    assert fresh_redis.pid != pid
    assert pid is not None and _gone(pid)
    assert fresh_redis.pid is not None
    assert _listening_tcp(fresh_redis.pid) == {("tcp", "127.0.0.1", port)}
    assert r.get("k") is None  # the old client reconnects by itself; the data is gone
    assert r.dbsize() == 0


def test_restart_without_wipe_keeps_the_data(fresh_redis: RedisServer) -> None:
    r = fresh_redis.client()
    r.set("k", "v")
    fresh_redis.restart(wipe=False)
    assert r.get("k") == b"v"
    fresh_redis.restart()  # and a wipe after that is a wipe, despite the dump file
    assert r.get("k") is None


# -- a hung server -----------------------------------------------------------------


def test_freeze_makes_clients_time_out_and_thaw_brings_them_back(fresh_redis: RedisServer) -> None:
    r = fresh_redis.client(socket_timeout=0.2, retry=None)
    assert r.ping()
    fresh_redis.freeze()
    assert fresh_redis.is_frozen
    assert fresh_redis.pid is not None
    assert redis_support._process_state(fresh_redis.pid) in ("T", "t")
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        r.ping()
    assert time.monotonic() - started < 5
    fresh_redis.thaw()
    assert not fresh_redis.is_frozen
    assert r.ping()  # the same client: its timed-out connection is replaced


def test_frozen_context_manager_and_stop_while_frozen(fresh_redis: RedisServer) -> None:
    with fresh_redis.frozen():
        assert fresh_redis.is_frozen
    assert fresh_redis.client().ping()
    fresh_redis.freeze()
    pid = fresh_redis.pid
    fresh_redis.stop()  # SIGTERM + SIGCONT: a frozen server stops too
    assert pid is not None and _gone(pid)
    assert not fresh_redis.running and not fresh_redis.is_frozen


# -- cut connections ---------------------------------------------------------------


def test_kill_clients_with_one_connection_and_no_retry_raises(fresh_redis: RedisServer) -> None:
    r = fresh_redis.client(single_connection_client=True, retry=None)
    assert r.ping()
    assert fresh_redis.client_count() == 1
    assert fresh_redis.kill_clients() == 1
    assert fresh_redis.client_count() == 0
    with pytest.raises(redis.ConnectionError):
        r.ping()
    assert r.ping()  # the command after that connects again


@pytest.mark.parametrize(
    "options",
    [{}, {"retry": None}, {"single_connection_client": True}],
    ids=["pool-default-retry", "pool-no-retry", "single-default-retry"],
)
def test_kill_clients_under_a_reconnecting_client(
    fresh_redis: RedisServer, options: dict[str, object]
) -> None:
    """redis-py hides the cut: a new connection (a new CLIENT ID), no error."""
    r = fresh_redis.client(**options)
    before = r.client_id()
    assert fresh_redis.kill_clients() == 1
    assert r.client_id() != before


def test_kill_clients_cuts_subscribers_too_and_spares_the_admin(fresh_redis: RedisServer) -> None:
    r = fresh_redis.client()
    p = r.pubsub()
    try:
        p.subscribe("ch")
        assert p.get_message(timeout=5)["type"] == "subscribe"
        r.ping()
        assert fresh_redis.client_count(("pubsub",)) == 1
        assert fresh_redis.client_count(("normal",)) == 1
        admin_id = fresh_redis.admin.client_id()
        assert fresh_redis.kill_clients() == 2
        assert fresh_redis.client_count() == 0
        assert fresh_redis.admin.client_id() == admin_id
    finally:
        p.close()


def test_kill_clients_without_skip_me_cuts_the_admin_which_reconnects(fresh_redis: RedisServer) -> None:
    fresh_redis.client().ping()
    admin_id = fresh_redis.admin.client_id()
    assert fresh_redis.kill_clients(skip_me=False) == 2
    assert fresh_redis.admin.client_id() != admin_id
    assert fresh_redis.info("clients")["connected_clients"] == 1  # the admin, again


def test_connection_killer_cuts_again_and_again(fresh_redis: RedisServer) -> None:
    r = fresh_redis.client(single_connection_client=True, retry=None)
    errors = 0
    with ConnectionKiller(fresh_redis, interval=0.01) as killer:
        deadline = time.monotonic() + 30
        while killer.kills < 3:
            assert time.monotonic() < deadline, f"only {killer.kills} kills in 30 s"
            try:
                r.ping()
            except redis.ConnectionError:
                errors += 1
    assert killer.kills >= 3 and killer.rounds >= 3
    assert errors >= 1
    with contextlib.suppress(redis.ConnectionError):
        r.ping()  # the last cut may have come after the last ping: seen here, once
    assert r.ping() and r.ping()  # stopped: nothing cuts it any more


def test_connection_killer_wait_for_kills(fresh_redis: RedisServer) -> None:
    r = fresh_redis.client()  # reconnects under the killer, never fails
    with ConnectionKiller(fresh_redis, interval=0.01) as killer:
        r.ping()
        assert killer.wait_for_kills(1) >= 1
        assert r.ping()
    assert killer.kills >= 1


def test_connection_killer_reports_a_dead_server(fresh_redis: RedisServer) -> None:
    killer = ConnectionKiller(fresh_redis, interval=0.01).start()
    fresh_redis.stop()
    # "not running", or a connection error if the stop came mid-command.
    with pytest.raises(RedisServerError, match="ConnectionKiller stopped"):
        killer.wait_for_kills(10**9)
    with pytest.raises(RedisServerError, match="ConnectionKiller failed"):
        killer.stop()
    killer.stop()  # idempotent, the error was raised once


# -- stop --------------------------------------------------------------------------


def test_stop_leaves_no_process_and_frees_the_port() -> None:
    require_redis_server()
    with RedisServer() as server:
        pid, port, directory = server.pid, server.port, server.dir
        assert pid is not None and not _gone(pid)
        server.stop()
        assert _gone(pid)
        assert not server.running
        server.stop()  # idempotent
        with socket.socket() as probe:  # the port is free again: we can bind it ourselves
            probe.bind(("127.0.0.1", port))
        assert server.log_text()  # stop() keeps the log
    assert not directory.exists()  # leaving the with block removes it


def test_start_again_after_stop(fresh_redis: RedisServer) -> None:
    port, pid = fresh_redis.port, fresh_redis.pid
    fresh_redis.stop()
    fresh_redis.start()
    assert fresh_redis.pid != pid
    assert fresh_redis.port == port  # an auto port is kept while it is free
    assert fresh_redis.client().ping()
