"""A real ``nginx`` load balancer for tests: round-robin over ``streamlit run`` replicas.

Why a real nginx: what a tab sees during a rolling deploy (its websocket cut,
the reconnect landing on another replica) depends on the proxy between the
browser and the replicas; a stand-in proxy would only show what it was written
to do. Debian's ``nginx`` package is installed by ``make test``
(``scripts/ensure-system-deps.sh``), like chromium and redis-server.

Every nginx here is a child process of the test run with a config of its own
(written by ``Nginx.config()``), listening on 127.0.0.1 only, on a free port,
with every file it writes (pid, logs, temp paths) in its own temporary
directory: it never reads /etc/nginx, never writes /var, and never touches the
system service. It runs in the foreground (``daemon off``) so the PID of the
``Popen`` is its master process, and it is stopped by that PID only (SIGTERM,
then SIGKILL of its own process group after a deadline), never by name.
Typical use::

    with Nginx([replica1.port, replica2.port]) as lb:
        StreamlitSession(lb)     # lb.ws_url: the websocket through nginx
        lb.served_by()           # the replica port that served each finished request

``require_nginx()`` fails the test on CI (``CI`` set) and skips it elsewhere
when nginx is missing, saying how to install it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from harness import free_port, program_path, require_program
from harness.programs import stop_process

__all__ = ["Nginx", "NginxError", "nginx_path", "require_nginx"]

# /usr/sbin is often not on a non-root user's PATH.
_FALLBACK_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
_PORT_TAKEN = "Address already in use"
_HEALTH_PATH = "/_stcore/health"
_STREAM_PATH = "/_stcore/stream"


class NginxError(RuntimeError):
    """nginx did not start (or stop) as asked; the message has the error log tail."""


def nginx_path() -> str | None:
    """Path of the ``nginx`` executable, or ``None``."""
    return program_path("nginx", _FALLBACK_PATHS)


def require_nginx() -> str:
    """Path of ``nginx``; without one, fail on CI (``CI`` set), else skip."""
    return require_program(
        nginx_path(),
        "nginx not found (on PATH or in /usr/sbin): the load-balancer tests need a real one. "
        "Run `make test` (it installs the system packages the tests use), or install it "
        "yourself: `sudo apt-get install nginx` (Debian/Ubuntu).",
    )


class Nginx:
    """An ``nginx`` child process on 127.0.0.1 balancing over ``upstreams``.

    ``upstreams``: ports of the replicas on 127.0.0.1, served round-robin
    (no sticky sessions). ``port``: where nginx listens (default: a free one,
    chosen again if another process takes it first). A replica that refuses a
    connection is skipped for that request (``proxy_next_upstream``) and for
    ``fail_timeout`` afterwards (``max_fails=1``).

    ``start()`` writes the config and starts nginx in ``dir``, a new temporary
    directory; ``stop()`` stops it by PID, keeps what it logged in memory (for
    ``log_tail()`` and ``served_by()``) and removes ``dir``. It can be started
    again after that, on the same port.
    """

    # Finished requests: "<status> <upstream addresses> <request line>".
    # $upstream_addr lists every replica tried, comma-separated, the last one answered.
    ACCESS_FORMAT = "$status [$upstream_addr] $request"

    def __init__(
        self,
        upstreams: Sequence[int],
        port: int | None = None,
        *,
        executable: str | None = None,
        fail_timeout: float = 2.0,
        startup_timeout: float = 20.0,
        stop_timeout: float = 10.0,
        port_attempts: int = 5,
    ) -> None:
        if not upstreams:
            raise ValueError("Nginx needs at least one upstream port")
        self.executable = executable or nginx_path()
        if self.executable is None:
            raise NginxError("nginx not found (apt-get install nginx)")
        self.upstreams: list[int] = list(upstreams)
        self._fixed_port = port is not None
        self.port: int = port if port is not None else free_port()
        self.fail_timeout = fail_timeout
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port_attempts = port_attempts
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._error_log = ""  # kept by stop(), after dir is gone
        self._log_mark = 0
        self._access_log = ""

    # -- addresses -------------------------------------------------------
    @property
    def url(self) -> str:
        """Base HTTP URL through nginx, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return self.url + _HEALTH_PATH

    @property
    def ws_url(self) -> str:
        """Streamlit's websocket endpoint through nginx (what ``StreamlitSession`` uses)."""
        return f"ws://127.0.0.1:{self.port}{_STREAM_PATH}"

    @property
    def pid(self) -> int | None:
        """PID of the master process (the last one after ``stop()``), ``None`` before start."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _path(self, name: str) -> Path:
        if self.dir is None:
            raise RuntimeError(f"{self!r} not started")
        return self.dir / name

    @property
    def conf_path(self) -> Path:
        return self._path("nginx.conf")

    @property
    def error_log_path(self) -> Path:
        return self._path("error.log")

    @property
    def access_log_path(self) -> Path:
        return self._path("access.log")

    @property
    def pid_path(self) -> Path:
        return self._path("nginx.pid")

    @property
    def command(self) -> list[str]:
        """The exact command line of the next start (``-e``: nginx >= 1.19.5)."""
        assert self.executable is not None
        return [
            self.executable,
            "-p", f"{self._path('')}/",
            "-c", str(self.conf_path),
            "-e", str(self.error_log_path),  # where errors go before the config is read
        ]  # fmt: skip

    def config(self) -> str:
        """The whole nginx.conf: see examples/replicas/nginx.conf for the why of each line."""
        d = self._path("")
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout={self.fail_timeout:g}s;"
            for p in self.upstreams
        )
        return f"""\
daemon off;
master_process on;
worker_processes 1;
pid {d / "nginx.pid"};
error_log {d / "error.log"} notice;

events {{
    worker_connections 1024;
}}

http {{
    client_body_temp_path {d / "client_body"};
    proxy_temp_path {d / "proxy"};
    fastcgi_temp_path {d / "fastcgi"};
    uwsgi_temp_path {d / "uwsgi"};
    scgi_temp_path {d / "scgi"};

    log_format upstreams '{self.ACCESS_FORMAT}';
    access_log {d / "access.log"} upstreams;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    upstream streamlit {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{self.port};

        location / {{
            proxy_pass http://streamlit;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout;
            proxy_read_timeout 86400s;
            proxy_send_timeout 86400s;
            proxy_buffering off;
        }}
    }}
}}
"""

    # -- lifecycle -------------------------------------------------------
    def start(self) -> Nginx:
        """Write the config, start nginx, block until it listens on 127.0.0.1:``port``.

        A port taken by someone else between choosing and binding: start again
        on another free port (only when no ``port`` was given). Raises
        ``NginxError`` with the error log tail otherwise (a config error
        included: nginx prints ``[emerg] ...`` and exits).
        """
        if self.running:
            raise RuntimeError(f"{self!r} already started")
        if self._proc is not None:
            self._proc.wait()
        self.dir = Path(tempfile.mkdtemp(prefix="nginx-test-"))
        if os.geteuid() == 0:
            # As root the workers run as an unprivileged user (nobody); let them
            # reach the temp paths nginx creates (and chowns to them) in here.
            self.dir.chmod(0o711)
        self._error_log = self._access_log = ""
        try:
            for attempt in range(1, self.port_attempts + 1):
                try:
                    self._start_once()
                    return self
                except _PortTaken:
                    if self._fixed_port or attempt == self.port_attempts:
                        raise NginxError(
                            f"nginx could not bind 127.0.0.1:{self.port} (port taken)\n{self._tail_block()}"
                        ) from None
                    self.port = free_port()
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")

    def _start_once(self) -> None:
        self.conf_path.write_text(self.config())
        self._log_mark = len(self.log_text())  # what this attempt logs starts here
        with open(self.error_log_path, "ab") as log:
            log.write(("$ " + " ".join(self.command) + "\n").encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.command,
                cwd=str(self.dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL reaches the workers too
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Wait for the pid file with our PID (written once nginx bound its
        listening socket), then for a TCP connect to succeed; fail when the
        process exits or the deadline passes."""
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.startup_timeout
        last = "no attempt"
        while True:
            code = proc.poll()
            if code is not None:
                proc.wait()
                if self._port_taken():
                    raise _PortTaken
                raise NginxError(f"nginx exited with code {code} before listening\n{self._tail_block()}")
            if self._port_taken():
                # nginx retries bind() for 2.5 s before it gives up: don't wait for that.
                self._terminate()
                raise _PortTaken
            if self._pid_file_is_ours():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
                except OSError as exc:
                    last = repr(exc)
            else:
                last = "no pid file yet"
            if time.monotonic() >= deadline:
                self._terminate()
                raise NginxError(
                    f"nginx on 127.0.0.1:{self.port} not listening after {self.startup_timeout:.0f}s "
                    f"(last: {last})\n{self._tail_block()}"
                )
            time.sleep(0.01)  # polling another process's readiness, with a deadline

    def _port_taken(self) -> bool:
        return _PORT_TAKEN in self.log_text()[self._log_mark :]

    def _pid_file_is_ours(self) -> bool:
        try:
            return int(self.pid_path.read_text().strip()) == self.pid
        except (FileNotFoundError, ValueError):
            return False

    def _terminate(self) -> None:
        """SIGTERM (fast shutdown: open websockets are cut, as when a proxy
        restarts) by PID, then SIGKILL of its process group after ``stop_timeout``."""
        proc = self._proc
        if proc is None:
            return
        stop_process(proc, self.stop_timeout, group=True)  # the group is ours: start_new_session

    def stop(self) -> None:
        """Stop nginx by PID, keep its logs in memory, remove ``dir``. Idempotent."""
        self._terminate()
        if self.dir is not None:
            self._error_log = self._read(self.error_log_path)
            self._access_log = self._read(self.access_log_path)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- logs ------------------------------------------------------------
    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        """The error log (nginx's own stdout and stderr included), so far or until ``stop()``."""
        return self._read(self.error_log_path) if self.dir is not None else self._error_log

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the error log, for failure messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _tail_block(self) -> str:
        where = self.error_log_path if self.dir is not None else "error.log, removed"
        return f"--- nginx log tail ({where}) ---\n{self.log_tail()}"

    def access_lines(self) -> list[str]:
        """One line per finished request (``ACCESS_FORMAT``); a websocket is
        logged when it closes."""
        text = self._read(self.access_log_path) if self.dir is not None else self._access_log
        return text.splitlines()

    def wait_for_access_lines(self, n: int, timeout: float = 10.0) -> list[str]:
        """The access log once it has at least ``n`` lines: nginx logs a request
        just after its response went out, so a client can be a moment ahead."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.access_lines()
            if len(lines) >= n:
                return lines
            if time.monotonic() >= deadline:
                raise NginxError(f"{len(lines)} access log lines after {timeout}s, wanted {n}: {lines}")
            time.sleep(0.005)  # polling another process's log, with a deadline

    def served_by(self, path: str | None = None) -> list[int | None]:
        """For each finished request (whose path starts with ``path``, if given),
        the port of the replica that answered it; ``None`` when none did (502)."""
        ports: list[int | None] = []
        for line in self.access_lines():
            _status, _, rest = line.partition(" [")
            addrs, _, request = rest.partition("] ")
            target = request.split(" ")[1] if request.count(" ") >= 1 else ""
            if path is not None and not target.startswith(path):
                continue
            last = addrs.split(",")[-1].strip()
            host, _, port = last.rpartition(":")
            ports.append(int(port) if host == "127.0.0.1" and port.isdigit() else None)
        return ports

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Nginx 127.0.0.1:{self.port} -> {self.upstreams} pid={self.pid} {state}>"


class _PortTaken(Exception):
    pass
