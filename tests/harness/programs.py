"""The system programs the tests drive (redis-server, nginx): where they are,
and what a test does without one (fail on CI, skip elsewhere)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence

import pytest


def program_path(name: str, fallbacks: Sequence[str] = ()) -> str | None:
    """Path of the executable ``name`` on PATH, else the first of
    ``fallbacks`` that is executable (``/usr/sbin`` is often not on a
    non-root user's PATH), else ``None``."""
    found = shutil.which(name)
    if found:
        return found
    for path in fallbacks:
        if os.access(path, os.X_OK):
            return path
    return None


def require_program(path: str | None, message: str) -> str:
    """``path``; without one, fail the test on CI (``CI`` set) and skip it
    elsewhere, with ``message`` (what is missing and how to install it)."""
    if path is not None:
        return path
    if os.environ.get("CI"):
        pytest.fail(message + " CI is set, so this is a failure, not a skip.", pytrace=False)
    pytest.skip(message)


def stop_process(
    proc: subprocess.Popen[bytes], timeout: float, *, thaw: bool = False, group: bool = False
) -> None:
    """Stop a child by its PID: SIGTERM (and SIGCONT with ``thaw``, so a
    stopped process can act on it), wait ``timeout``, then SIGKILL (its whole
    process group with ``group``: one started with ``start_new_session``).
    Reaps it either way, so no ResourceWarning."""
    if proc.poll() is not None:
        proc.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
        if thaw:
            proc.send_signal(signal.SIGCONT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        proc.wait(timeout=timeout)
