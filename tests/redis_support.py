"""A real ``redis-server`` for tests: start, stop, restart, freeze, cut clients.

Why a real server: the Redis backend's failure handling (dropped connections,
a server that hangs, a server that comes back empty) can only be exercised
against the real thing; fakeredis has no sockets to cut and no process to
stop.

Every server is a child process of the test run, bound to 127.0.0.1 on a free
port plus a unix socket in its own temporary directory, with no persistence
(``--save '' --appendonly no``). It is stopped by its PID only (SIGTERM, then
SIGKILL after a deadline), never by name, so other Redis servers on the machine
are left alone. Typical use::

    with RedisServer() as server:
        r = server.client()
        r.set("k", "v")
        server.restart()           # same port, empty data
        with server.frozen():      # a hung server: clients time out
            ...
        with ConnectionKiller(server, interval=0.05) as killer:
            ...                    # every client connection cut, over and over
        assert killer.kills > 0

The fixtures ``redis_server``, ``redis_url`` and ``fresh_redis`` in
``conftest.py`` wrap this. When ``redis-server`` is missing,
``require_redis_server()`` fails the test on CI (``CI`` set) and skips it
elsewhere, saying how to install it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import redis
from harness.programs import program_path, require_program, stop_process
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "ConnectionKiller",
    "RedisServer",
    "RedisServerError",
    "free_port",
    "redis_server_path",
    "require_redis_server",
    "wait_for",
]

_FALLBACK_PATHS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes with the NUL).
_MAX_UNIX_PATH = 100
_PORT_TAKEN = "Address already in use"


class RedisServerError(RuntimeError):
    """The server did not start (or stop) as asked; the message has the log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice).

    There is a window before redis-server binds it; ``RedisServer.start``
    retries with another port when the server reports the port taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_path() -> str | None:
    """Path of the ``redis-server`` executable, or ``None``."""
    return program_path("redis-server", _FALLBACK_PATHS)


def require_redis_server() -> str:
    """Path of ``redis-server``; without one, fail on CI (``CI`` set), else skip."""
    return require_program(
        redis_server_path(),
        "redis-server not found on PATH: the Redis tests need a real server. "
        "Run `make test` (it installs the system packages the tests use), or "
        "install it yourself: `sudo apt-get install redis-server` (Debian/Ubuntu).",
    )


def _short_tmpdir(prefix: str) -> Path:
    """A new temporary directory whose path leaves room for a unix socket."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if len(str(path / "redis.sock")) <= _MAX_UNIX_PATH:
        return path
    shutil.rmtree(path, ignore_errors=True)  # a long TMPDIR: fall back to /tmp
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from /proc (``T`` = stopped), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) S ..." -- comm may contain spaces or parentheses.
    return stat.rpartition(")")[2].split()[0]


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1 (TCP) and a unix socket.

    ``port``: the TCP port (default: a free one, chosen again if another
    process takes it first). It stays the same across ``restart()``.
    ``extra_args``: more ``--option value`` arguments, appended last (so they
    win). The log (the server's stdout and stderr, every start appended) and
    the unix socket live in ``dir``, a temporary directory removed by
    ``close()`` (and on leaving a ``with`` block), kept by ``stop()`` so the log
    can still be read.

    The helper talks to the server through its own single admin connection
    (``admin``); ``kill_clients`` spares it, so it is never one of the
    connections a test counts.
    """

    ARGS: tuple[str, ...] = (
        "--save", "",
        "--appendonly", "no",
        "--enable-debug-command", "local",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
        "--protected-mode", "yes",
    )  # fmt: skip

    def __init__(
        self,
        *,
        port: int | None = None,
        executable: str | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 20.0,
        stop_timeout: float = 10.0,
        port_attempts: int = 5,
    ) -> None:
        self.executable = executable or redis_server_path()
        if self.executable is None:
            raise RedisServerError("redis-server not found (apt-get install redis-server)")
        self._fixed_port = port is not None
        self.port: int = port if port is not None else free_port()
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port_attempts = port_attempts
        self.dir: Path = _short_tmpdir("redis-test-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._admin: redis.Redis | None = None
        self._admin_lock = threading.RLock()
        self._clients: list[redis.Redis] = []
        self._frozen = False

    # -- addresses -------------------------------------------------------
    @property
    def unix_path(self) -> Path:
        """The unix socket (mode 700)."""
        return self.dir / "redis.sock"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """``unix:///path/to/redis.sock?db=0``."""
        return f"unix://{self.unix_path}?db=0"

    @property
    def pid(self) -> int | None:
        """PID of the running process (the last one after ``stop()``), ``None`` before start."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process is alive (frozen or not)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def is_frozen(self) -> bool:
        return self._frozen and self.running

    @property
    def command(self) -> list[str]:
        """The exact command line of the next start."""
        assert self.executable is not None
        return [
            self.executable,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--unixsocket", str(self.unix_path),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            *self.ARGS,
            *self.extra_args,
        ]  # fmt: skip

    # -- lifecycle -------------------------------------------------------
    def start(self) -> RedisServer:
        """Start the process and block until it answers PING on TCP and the unix socket.

        A port taken by someone else between choosing and binding: start again
        on another free port (only when no ``port`` was given). Raises
        ``RedisServerError`` with the log tail otherwise.
        """
        if self.running:
            raise RuntimeError(f"{self!r} already started")
        self.dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, self.port_attempts + 1):
            try:
                self._start_once()
                return self
            except _PortTaken:
                if self._fixed_port or attempt == self.port_attempts:
                    raise RedisServerError(
                        f"redis-server could not bind 127.0.0.1:{self.port} (port taken)\n"
                        f"{self._tail_block()}"
                    ) from None
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start_once(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(("$ " + " ".join(a or repr(a) for a in self.command) + "\n").encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.command,
                cwd=str(self.dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C in the terminal reaches pytest, which stops us
            )
        self._frozen = False
        try:
            self._wait_ready()
        except BaseException:
            self._terminate()
            raise

    def _wait_ready(self) -> None:
        """Poll PING until it answers, the process exits, or the deadline passes."""
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no attempt"
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc.wait()
                if _PORT_TAKEN in self.log_text()[-4000:]:
                    raise _PortTaken
                raise RedisServerError(
                    f"redis-server exited with code {code} before answering PING\n{self._tail_block()}"
                )
            try:
                # The unix socket first: only this process can answer there (a TCP
                # port taken by another program may accept and never reply), and
                # redis-server serves nothing unless every listener was set up.
                for probe in (
                    redis.Redis(unix_socket_path=str(self.unix_path), socket_timeout=1, retry=None),
                    redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, retry=None),
                ):
                    with probe:
                        probe.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                last_error = repr(exc)
            except redis.ResponseError as exc:  # e.g. LOADING: still reading a dump
                last_error = repr(exc)
            if time.monotonic() >= deadline:
                raise RedisServerError(
                    f"redis-server on 127.0.0.1:{self.port} did not answer PING within "
                    f"{self.startup_timeout:.0f}s (last: {last_error})\n{self._tail_block()}"
                )
            time.sleep(0.01)  # polling another process's readiness, with a deadline

    def _terminate(self) -> None:
        """SIGTERM by PID (and SIGCONT, so a frozen server can act on it), then SIGKILL."""
        self._close_admin()
        proc = self._proc
        if proc is None:
            return
        stop_process(proc, self.stop_timeout, thaw=True)
        self._frozen = False

    def stop(self) -> None:
        """Stop the process by PID (SIGTERM, SIGKILL after ``stop_timeout``). Idempotent.

        Closes the connections of the clients made by ``client()`` (they connect
        again if used after a new ``start()``); keeps ``dir`` (the log).
        """
        self._close_clients()
        self._terminate()

    def close(self) -> None:
        """``stop()`` and remove the temporary directory."""
        self.stop()
        self._close_clients()
        self._clients.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _close_clients(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()

    def restart(self, wipe: bool = True) -> RedisServer:
        """Stop and start again on the same port and unix socket (a new PID).

        ``wipe=True`` (the default): the new server is empty, as a Redis without
        persistence is after a crash (``--save ''`` means nothing is ever written
        to disk, so this is what any restart does). ``wipe=False``: the data is
        ``SAVE``d to ``dir`` just before stopping and loaded back, as a Redis with
        persistence is after a clean restart. Clients made by ``client()`` stay
        usable: they reconnect (see ``client``). Thaws a frozen server first.
        """
        if self.is_frozen:
            self.thaw()
        dump = self.dir / "dump.rdb"
        if wipe:
            dump.unlink(missing_ok=True)
        elif self.running:
            self.admin.save()
        self._terminate()
        if wipe:
            dump.unlink(missing_ok=True)  # SIGTERM saves nothing with save '', but be sure
        self._fixed_port, fixed = True, self._fixed_port
        try:
            self.start()
        finally:
            self._fixed_port = fixed
        return self

    def freeze(self) -> None:
        """SIGSTOP the process: a hung server. Connections stay open, nothing answers.

        Returns once the kernel reports the process stopped.
        """
        proc = self._require_running()
        os.kill(proc.pid, signal.SIGSTOP)
        self._frozen = True
        self._wait_state(proc.pid, lambda s: s in ("T", "t"), "stopped")

    def thaw(self) -> None:
        """SIGCONT the process; returns once it answers PING again."""
        proc = self._require_running()
        os.kill(proc.pid, signal.SIGCONT)
        self._frozen = False
        self._wait_state(proc.pid, lambda s: s not in ("T", "t"), "running")
        self._wait_ready()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[RedisServer]:
        """``freeze()`` for the ``with`` block, ``thaw()`` after it."""
        self.freeze()
        try:
            yield self
        finally:
            if self.running:
                self.thaw()

    def _wait_state(self, pid: int, ok: Any, what: str) -> None:
        deadline = time.monotonic() + self.stop_timeout
        while True:
            state = _process_state(pid)
            if state is None or ok(state):
                return
            if time.monotonic() >= deadline:
                raise RedisServerError(f"redis-server pid {pid} not {what} after {self.stop_timeout}s")
            time.sleep(0.001)  # polling the kernel's view of the process, with a deadline

    def _require_running(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            raise RedisServerError(f"{self!r} is not running")
        return self._proc

    # -- talking to it ---------------------------------------------------
    def client(self, *, unix: bool = False, **kwargs: Any) -> redis.Redis:
        """A new ``redis.Redis`` for this server (TCP, or the unix socket with ``unix=True``).

        Defaults: db 0, ``socket_timeout`` and ``socket_connect_timeout`` 5 s;
        everything else is redis-py's; ``kwargs`` override. Closed by ``stop()``.

        What a cut connection (``kill_clients``, ``restart``) does to it, as
        redis-py 8 behaves (checked by ``tests/test_redis_support.py``): a pooled
        client (the default) replaces a cut idle connection before its next
        command, even with ``retry=None``; its default ``Retry`` also redoes a
        command whose connection died under it. Only
        ``single_connection_client=True, retry=None`` sees the cut: the next
        command raises ``redis.ConnectionError``.
        """
        options: dict[str, Any] = {"db": 0, "socket_timeout": 5.0, "socket_connect_timeout": 5.0}
        if unix:
            options["unix_socket_path"] = str(self.unix_path)
        else:
            options.update(host="127.0.0.1", port=self.port)
        options.update(kwargs)
        client = redis.Redis(**options)
        self._clients.append(client)
        return client

    @property
    def admin(self) -> redis.Redis:
        """The helper's own connection (one socket, the unix one, named ``redis-support-admin``)."""
        with self._admin_lock:
            if self._admin is None:
                self._require_running()
                self._admin = redis.Redis(
                    unix_socket_path=str(self.unix_path),
                    single_connection_client=True,
                    client_name="redis-support-admin",
                    retry=Retry(NoBackoff(), 1),  # reconnect at once if cut, no backoff
                    socket_timeout=5.0,
                    socket_connect_timeout=5.0,
                )
            return self._admin

    def _close_admin(self) -> None:
        with self._admin_lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()

    def kill_clients(self, skip_me: bool = True, types: Sequence[str] = ("normal", "pubsub")) -> int:
        """Cut every client connection of the given types; returns how many were cut.

        ``CLIENT KILL TYPE normal SKIPME yes`` (and the same for ``pubsub``: a
        connection in subscribe mode is not of type ``normal``). ``skip_me``:
        spare the helper's admin connection (with ``False`` it is cut too and
        reconnects at its next use).
        """
        killed = 0
        with self._admin_lock:
            for kind in types:
                killed += int(
                    self.admin.execute_command(
                        "CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes" if skip_me else "no"
                    )
                )
        return killed

    def info(self, section: str | None = None) -> dict[str, Any]:
        """``INFO`` (or ``INFO section``) as a dict."""
        with self._admin_lock:
            return dict(self.admin.info(section) if section else self.admin.info())

    def flushall(self) -> None:
        """``FLUSHALL SYNC``: empty every database."""
        with self._admin_lock:
            self.admin.flushall(asynchronous=False)

    def client_count(self, types: Sequence[str] = ("normal", "pubsub")) -> int:
        """Client connections of the given types, not counting the admin one."""
        with self._admin_lock:
            return sum(
                1
                for kind in types
                for c in self.admin.client_list(_type=kind)
                if c.get("name") != "redis-support-admin"
            )

    # -- context manager ---------------------------------------------------
    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- log -------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _tail_block(self) -> str:
        return f"--- log tail ({self.log_path}) ---\n{self.log_tail()}"

    def __repr__(self) -> str:
        state = "frozen" if self.is_frozen else "running" if self.running else "stopped"
        return f"<RedisServer 127.0.0.1:{self.port} pid={self.pid} {state}>"


class _PortTaken(Exception):
    pass


class ConnectionKiller:
    """A thread that cuts every client connection of ``server`` every ``interval`` s.

    ::

        with ConnectionKiller(server, interval=0.05) as killer:
            ...  # the code under test, while its connections keep dying
        assert killer.kills > 0

    ``kills``: connections cut so far; ``rounds``: ``kill_clients`` calls made.
    ``wait_for_kills(n)`` blocks until ``n`` connections were cut (for a test
    that must see its code survive at least one cut). An error in the thread
    (the server stopped or froze under it) ends the thread and is raised again
    by ``stop()`` -- unless ``ignore_errors`` -- so a killer that did not run
    does not pass for one that did.
    """

    def __init__(self, server: RedisServer, interval: float = 0.05, *, ignore_errors: bool = False) -> None:
        self.server = server
        self.interval = interval
        self.ignore_errors = ignore_errors
        self.kills = 0
        self.rounds = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> ConnectionKiller:
        if self._thread is not None:
            raise RuntimeError("ConnectionKiller already started")
        self._thread = threading.Thread(target=self._run, name="redis-connection-killer", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        # Event.wait is the period of the killer, not a synchronisation.
        while not self._stop.wait(self.interval):
            try:
                killed = self.server.kill_clients()
            except BaseException as exc:
                if self.ignore_errors:
                    continue
                self.error = exc
                with self._progress:
                    self._progress.notify_all()
                return
            with self._progress:
                self.kills += killed
                self.rounds += 1
                self._progress.notify_all()

    def wait_for_kills(self, n: int = 1, timeout: float = 10.0) -> int:
        """Block until at least ``n`` connections were cut; returns ``kills``."""
        with self._progress:
            ok = self._progress.wait_for(lambda: self.kills >= n or self.error is not None, timeout)
        if self.error is not None:
            raise RedisServerError(f"ConnectionKiller stopped: {self.error!r}") from self.error
        if not ok:
            raise TimeoutError(f"ConnectionKiller: {self.kills} kills after {timeout}s, wanted {n}")
        return self.kills

    def stop(self) -> None:
        """Stop the thread and wait for it; raise its error, if any. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is not None and not self.ignore_errors:
            error, self.error = self.error, None
            raise RedisServerError(f"ConnectionKiller failed: {error!r}") from error

    def __enter__(self) -> ConnectionKiller:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:  # do not hide the test's own failure behind the killer's
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            return
        self.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "the condition") -> Any:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
        time.sleep(0.002)  # polling the condition above, with a deadline
