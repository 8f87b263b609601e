"""Start and stop a real ``streamlit run`` server for tests.

Why a real server: cross-session behaviour (pushed reruns, fragment scoping,
concurrency) only exists in a running ``Runtime``; ``AppTest`` mocks it away
(every AppTest run installs a ``MagicMock`` Runtime; see
``docs/streamlit-internals.md``).

The server is a child process started with ``sys.executable -m streamlit run``
so it uses the same interpreter (and venv) as the tests. It is stopped by its
PID only (terminate, wait, kill), never by name, so parallel test runs and
other Streamlit processes on the machine are left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["ServerStartError", "StreamlitServer", "free_port"]

_HEALTH_PATH = "/_stcore/health"
_STREAM_PATH = "/_stcore/stream"


class ServerStartError(RuntimeError):
    """The server did not become healthy; the message carries the log tail."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Binding port 0 lets the kernel choose; there is a small window before the
    server binds it, which is acceptable for tests (a clash shows up as a
    health-check failure with the log explaining it).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class StreamlitServer:
    """A ``streamlit run <app>`` child process bound to 127.0.0.1.

    Use as a context manager::

        with StreamlitServer("tests/apps/harness_app.py") as server:
            ...  # server.ws_url, server.url, server.log_text()

    ``options`` are extra ``--key value`` command-line options (without the
    leading dashes), e.g. ``{"runner.fastReruns": "false"}``; they override the
    defaults below. ``env`` is merged over ``os.environ``.

    The log (stdout and stderr, interleaved) goes to a file in a temporary
    directory. It is kept after ``stop()`` so failure messages can quote it,
    and removed only when ``keep_log=False`` and the server stopped cleanly.
    """

    DEFAULT_OPTIONS: Mapping[str, str] = {
        "server.headless": "true",
        "server.address": "127.0.0.1",
        "server.fileWatcherType": "none",
        "browser.gatherUsageStats": "false",
    }

    def __init__(
        self,
        app: str | os.PathLike[str],
        *,
        options: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        startup_timeout: float = 60.0,
        cwd: str | os.PathLike[str] | None = None,
        keep_log: bool = True,
    ) -> None:
        self.app = Path(app).resolve()
        if not self.app.is_file():
            raise FileNotFoundError(f"Streamlit app not found: {self.app}")
        self.port: int = port if port is not None else free_port()
        self.options: dict[str, str] = {**self.DEFAULT_OPTIONS, **(options or {})}
        self.options["server.port"] = str(self.port)
        self.extra_env: dict[str, str] = dict(env or {})
        self.startup_timeout = startup_timeout
        self.cwd = Path(cwd) if cwd is not None else self.app.parent
        self.keep_log = keep_log
        self._tmpdir = Path(tempfile.mkdtemp(prefix="streamlit-harness-"))
        self.log_path: Path = self._tmpdir / "server.log"
        self._log_file: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses -------------------------------------------------------
    @property
    def url(self) -> str:
        """Base HTTP URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The websocket endpoint the browser (and our client) talks to."""
        return f"ws://127.0.0.1:{self.port}{_STREAM_PATH}"

    @property
    def pid(self) -> int | None:
        """PID of the server process, or ``None`` before ``start()``."""
        return self._proc.pid if self._proc is not None else None

    @property
    def command(self) -> list[str]:
        """The exact command line (for logs and failure messages)."""
        cmd = [sys.executable, "-m", "streamlit", "run", str(self.app)]
        for key, value in self.options.items():
            cmd += [f"--{key}", str(value)]
        return cmd

    # -- lifecycle -------------------------------------------------------
    def start(self) -> StreamlitServer:
        """Start the process and block until ``/_stcore/health`` answers ``ok``.

        Raises ``ServerStartError`` (with the log tail) if the process exits
        or the health check does not pass within ``startup_timeout``.
        """
        if self._proc is not None:
            raise RuntimeError("server already started")
        env = {**os.environ, **self.extra_env}
        # Unbuffered output so the log is useful even if the process is killed.
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log_file.write(("$ " + " ".join(self.command) + "\n").encode())
        self._log_file.flush()
        self._proc = subprocess.Popen(
            self.command,
            cwd=str(self.cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        """Poll the health endpoint; a short poll interval is fine here because
        this is waiting on another process, not synchronising test logic."""
        deadline = time.monotonic() + self.startup_timeout
        health = self.url + _HEALTH_PATH
        last_error = "no attempt"
        while time.monotonic() < deadline:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"streamlit exited with code {code} before becoming healthy\n"
                    f"--- log tail ({self.log_path}) ---\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(health, timeout=2) as resp:
                    body = resp.read().decode(errors="replace").strip()
                    if resp.status == 200 and body == "ok":
                        return
                    last_error = f"HTTP {resp.status}: {body!r}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = repr(exc)
            time.sleep(0.1)
        raise ServerStartError(
            f"streamlit on port {self.port} not healthy after {self.startup_timeout:.0f}s "
            f"(last: {last_error})\n--- log tail ({self.log_path}) ---\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process by PID: SIGTERM, wait, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        elif proc is not None:
            proc.wait()  # reap, so no ResourceWarning
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if not self.keep_log and proc is not None and proc.returncode in (0, -15):
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> StreamlitServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- log -------------------------------------------------------------
    def log_text(self) -> str:
        """The whole server log so far (stdout and stderr)."""
        if self._log_file is not None:
            with contextlib.suppress(ValueError):
                self._log_file.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the log, for failure messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<StreamlitServer {self.app.name} port={self.port} pid={self.pid} {state}>"


def start_all(servers: Sequence[StreamlitServer]) -> list[StreamlitServer]:
    """Start the servers in parallel; if one fails, stop every one and re-raise."""
    with ThreadPoolExecutor(len(servers)) as pool:
        errors = [f.exception() for f in [pool.submit(s.start) for s in servers]]
    failed = [e for e in errors if e is not None]
    if failed:
        for s in servers:
            s.stop()
        raise failed[0]
    return list(servers)


class LogWatch:
    """What the servers logged from now on; no tracebacks allowed in it."""

    def __init__(self, *servers: StreamlitServer) -> None:
        self.servers = servers
        self.marks = [len(s.log_text()) for s in servers]

    def text(self) -> str:
        return "\n".join(s.log_text()[m:] for s, m in zip(self.servers, self.marks, strict=True))

    def assert_clean(self) -> None:
        text = self.text()
        assert "Traceback" not in text and "ServerStateError" not in text, text[-4000:]
