"""tests/nginx_support.py against real replicas: nginx round-robin in front of
two ``streamlit run`` servers of tests/apps/harness_app.py (plain Streamlit).

What later tests (issue 18: a tab outliving its replica) rely on: health
checks and websocket sessions go through nginx to both replicas; a session's
websocket is cut when its replica stops, and the other sessions carry on;
new connections after that all reach the surviving replica. One test, to keep
the wall time low (it runs on every supported Streamlit release).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from harness import StreamlitServer, StreamlitSession, start_all
from nginx_support import Nginx, require_nginx

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "apps" / "harness_app.py"
EXAMPLE_CONF = ROOT / "examples" / "replicas" / "nginx.conf"
TIMEOUT = 30.0


def health(lb: Nginx) -> str:
    with urllib.request.urlopen(lb.health_url, timeout=TIMEOUT) as resp:
        assert resp.status == 200
        body: str = resp.read().decode().strip()
        return body


async def open_sessions(lb: Nginx, n: int) -> list[StreamlitSession]:
    return [await StreamlitSession(lb, name=f"s{i}", timeout=TIMEOUT).connect() for i in range(n)]


async def close_all(sessions: list[StreamlitSession]) -> None:
    await asyncio.gather(*(s.close() for s in sessions))


def test_nginx_balances_replicas_and_skips_a_stopped_one() -> None:
    require_nginx()
    r1, r2 = start_all([StreamlitServer(APP) for _ in range(2)])
    try:
        with Nginx([r1.port, r2.port]) as lb:
            ports = {r1.port, r2.port}

            # Round-robin: two health checks, one per replica.
            assert [health(lb), health(lb)] == ["ok", "ok"]
            lb.wait_for_access_lines(2)
            assert set(lb.served_by("/_stcore/health")) == ports, lb.access_lines()

            async def both_up() -> None:
                sessions = await open_sessions(lb, 2)
                try:
                    for s in sessions:
                        assert s.text_containing("clicks=") == "clicks=0", s.describe()
                        await s.click("Increment")
                        assert s.text_containing("clicks=") == "clicks=1", s.describe()
                    # Stop replica 1 by PID: exactly the session it served is cut.
                    r1.stop()
                    deadline = time.monotonic() + TIMEOUT
                    while all(s.connected for s in sessions) and time.monotonic() < deadline:
                        await asyncio.sleep(0.01)  # polling the reader's state, with a deadline
                    survivors = [s for s in sessions if s.connected]
                    assert len(survivors) == 1, [s.describe() for s in sessions]
                    await survivors[0].click("Increment")
                    assert survivors[0].text_containing("clicks=") == "clicks=2"
                finally:
                    await close_all(sessions)

            asyncio.run(both_up())
            # Logged when they closed: one websocket per replica.
            lb.wait_for_access_lines(4)
            stream = lb.served_by("/_stcore/stream")
            assert len(stream) == 2 and set(stream) == ports, lb.access_lines()

            # Replica 1 is gone: new requests and sessions all reach replica 2.
            mark = len(lb.access_lines())
            assert [health(lb) for _ in range(3)] == ["ok"] * 3

            async def one_up() -> None:
                sessions = await open_sessions(lb, 2)
                try:
                    for s in sessions:
                        assert s.text_containing("clicks=") == "clicks=0", s.describe()
                finally:
                    await close_all(sessions)

            asyncio.run(one_up())
            lb.wait_for_access_lines(mark + 5)
            served = lb.served_by()[mark:]
            assert served == [r2.port] * 5, (lb.access_lines(), lb.log_tail())
    finally:
        r1.stop()
        r2.stop()


def test_example_config_parses(tmp_path: Path) -> None:
    """examples/replicas/nginx.conf, included in an http block as Debian's
    nginx.conf does, passes ``nginx -t`` (which binds no port)."""
    nginx = require_nginx()
    temp_paths = " ".join(
        f"{name}_temp_path {tmp_path / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp_path / "main.conf"
    main.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\nevents {{}}\n"
        f"http {{ access_log off; {temp_paths} include {EXAMPLE_CONF}; }}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-q", "-p", f"{tmp_path}/", "-c", str(main), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr + (tmp_path / "error.log").read_text()
