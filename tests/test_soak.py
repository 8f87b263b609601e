"""The soak (benchmarks/soak.py) in smoke mode, through ``benchmarks.run
--only soak``: 100 sessions connect, read and disconnect on a real server,
then 25 sessions under a background writer (20 writes/s, 10 s).

Unlike the other benchmarks' smoke runs, the soak's targets are asserted:
they are counts and bounds, not timings (the machine is shared): no dead
session left in the tracker, RSS back within 10% of its level after the
warm-up, every session converged to the last value, no error, no rerun loop.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every row of the soak table, by id (see benchmarks/soak.py).
EXPECTED_ROWS = [
    "soak_dead_sessions",
    "soak_bound_sessions",
    "soak_rss",
    "soak_parked",
    "soak_converged",
    "soak_writes",
    "soak_errors",
    "soak_loop",
]

pytestmark = [pytest.mark.server, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("soak") / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--only", "soak", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    assert proc.returncode == 0 and data and not data["failures"], (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-6000:]}"
    )
    return proc, data


def test_every_soak_row_prints(soak: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    proc, data = soak
    rows = {row["id"]: row for row in data["soak_rows"]}
    assert list(rows) == EXPECTED_ROWS, f"rows: {list(rows)}\n{proc.stdout}"
    table = proc.stdout[proc.stdout.index("server_state soak") :]
    for row in rows.values():
        assert f"| {row['benchmark']} " in table, f"row {row['id']} not printed:\n{proc.stdout}"
        assert row["ours"] and row["ours"] != "-", row
        assert row["met"] in ("yes", "no", "-"), row


def test_closed_sessions_leave_the_tracker_and_memory_comes_back(
    soak: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    proc, data = soak
    c = data["results"]["soak"]["connect"]
    assert c["sessions"] == 100, c
    assert c["dead"] == 0, c  # stats()["sessions"], the probe excepted
    assert c["bound"] == 0, c  # bound_sessions("shared")
    assert c["version_shared"] == c["version_shared_before"], c  # nothing wrote the key meanwhile
    assert c["rss_after"] <= 1.10 * c["rss_before"], (c, proc.stdout)


def test_a_background_writer_converges_without_error_or_loop(
    soak: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    proc, data = soak
    w = data["results"]["soak"]["writer"]
    assert w["writes"] == w["last"] == 200, w  # 20 writes/s for 10 s, all made
    assert w["writer_errors"] == 0 and w["page_errors"] == 0, w
    assert w["converged"] == w["sessions"] == 25, w
    assert w["still_showing_last"] == w["sessions"], w  # no later run showed anything else
    assert w["loops_stopped"] == 0, w
    lg = data["results"]["soak"]["log"]
    assert lg["errors"] == 0, lg  # no traceback in the server log
    assert lg["loops"] == 0, lg  # no "stopped rerunning" / "stopped a rerun loop"
    rows = {row["id"]: row for row in data["soak_rows"]}
    missed = [i for i, row in rows.items() if row["met"] == "no"]
    assert not missed, proc.stdout
