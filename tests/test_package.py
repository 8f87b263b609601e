"""The package's public face: importing does no work, sessions are held weakly."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import weakref

import pytest

import server_state as package
from server_state import _streamlit as adapter
from server_state._state import ServerState


def test_import_does_no_work_and_prints_nothing() -> None:
    code = (
        "import server_state\n"
        "from streamlit.runtime import Runtime\n"
        "from streamlit.runtime.scriptrunner.script_runner import ScriptRunner\n"
        "assert not Runtime.exists()\n"
        "assert not getattr(ScriptRunner, '_server_state_hooked', False), 'hooked at import'\n"
        "print(sorted(server_state.__all__) == sorted(set(server_state.__all__)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True\n"
    assert done.stderr == ""


def test_public_names_are_exported() -> None:
    for name in ("server_state", "server_state_lock", "no_rerun", "force_rerun_bound_sessions"):
        assert name in package.__all__
        assert getattr(package, name) is not None


class _FakeSession:
    """Stands in for an AppSession object only to prove we keep no strong
    reference to it (the cross-session behaviour is tested on real servers)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._event_loop = loop


def test_a_tracked_session_is_not_kept_alive_and_is_forgotten_when_collected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = ServerState()
    loop = asyncio.new_event_loop()  # never run: callbacks queued on it are dropped
    session = _FakeSession(loop)
    alive = weakref.ref(session)
    monkeypatch.setattr(adapter, "active_session", lambda sid: alive() if sid == "sid-1" else None)
    coordinator = state._coord
    coordinator.run_started("sid-1", None)
    assert state._tracker.entry("sid-1") is not None
    coordinator.run_finished(True)

    del session
    gc.collect()
    assert alive() is None  # nothing of ours held it
    # The finalizer only queued the id; the next announcement drops it.
    state["k"] = 1
    assert state._tracker.entry("sid-1") is None
    loop.close()


def test_an_unsupported_state_url_fails_at_import_with_a_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import server_state"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SERVER_STATE_URL": "mongodb://127.0.0.1:1/0"},
    )
    assert done.returncode != 0
    assert "SERVER_STATE_URL=mongodb://127.0.0.1:1/0" in done.stderr
    assert "memory://" in done.stderr and "redis://" in done.stderr


# -- the boot hook (server_state-boot.pth, _server_state_boot.py) -------------------


def test_the_boot_hook_leaves_every_other_python_process_alone() -> None:
    """The .pth runs in every interpreter of the environment: outside
    ``streamlit run`` it must import nothing and print nothing."""
    code = "import sys; print('server_state' in sys.modules, 'streamlit' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "False False\n", "")


@pytest.mark.parametrize(
    ("argv", "is_run"),
    [
        (["/venv/bin/streamlit", "run", "app.py"], True),
        (["/venv/bin/python", "-m", "streamlit", "run", "app.py", "--server.port", "8501"], True),
        (["python3", "-X", "dev", "-m", "streamlit", "run", "app.py"], True),
        (["/venv/bin/streamlit", "hello"], False),
        (["/venv/bin/streamlit", "config", "show"], False),
        (["python", "-m", "pytest", "tests/streamlit", "run"], False),
        (["python", "-c", "pass"], False),
    ],
)
def test_the_boot_hook_recognises_streamlit_run(argv: list[str], is_run: bool) -> None:
    import _server_state_boot

    assert _server_state_boot._is_streamlit_run(argv) is is_run


def test_the_wheel_installs_the_boot_hook(tmp_path: os.PathLike[str]) -> None:
    """``pip install server-state`` (a wheel, not this editable install)
    carries the .pth and the module it imports."""
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(root), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = Path(tmp_path).glob("server_state-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"server_state-boot.pth", "_server_state_boot.py", "server_state/_streamlit.py"} <= names
    pth = zipfile.ZipFile(wheel).read("server_state-boot.pth").decode()
    assert pth == (root / "server_state-boot.pth").read_text()


@pytest.mark.parametrize(("setting", "hooked"), [(None, "True"), ("0", "False")])
@pytest.mark.releases
def test_server_state_run_reconnected_0_leaves_reconnecting_tabs_alone(
    setting: str | None, hooked: str
) -> None:
    """docs/replicas.md: ``SERVER_STATE_RUN_RECONNECTED=0`` turns the runs of returning
    tabs off: Streamlit's session connections are then left unhooked."""
    env = {k: v for k, v in os.environ.items() if k != "SERVER_STATE_RUN_RECONNECTED"}
    if setting is not None:
        env["SERVER_STATE_RUN_RECONNECTED"] = setting
    code = (
        "from server_state import _streamlit\n"
        "_streamlit.hook_reconnects()\n"
        "from streamlit.runtime import Runtime\n"
        "print(getattr(Runtime, '_server_state_reconnect_hooked', False))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert (done.returncode, done.stdout.strip()) == (0, hooked), done.stderr
