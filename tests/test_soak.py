"""The soak (benchmarks/soak.py) in smoke mode, through ``benchmarks.run
--only soak``: 100 sessions connect, read and disconnect on a real server,
then 25 sessions under a background writer (20 writes/s, 10 s).

Unlike the other benchmarks' smoke runs, the soak's targets are asserted:
they are counts and bounds, not timings (the machine is shared): no dead
session left in the tracker, RSS back within 10% of its level after the
warm-up, every session converged to the last value, no error, no rerun loop.
"""

from __future__ import annotations

import pytest
from bench_support import Run, assert_ran, assert_table, run_smoke

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
def soak(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_smoke(["soak"], tmp_path_factory.mktemp("soak"))
    assert_ran(run)
    return run


def test_every_soak_row_prints(soak: Run) -> None:
    assert_table(soak, "soak_rows", EXPECTED_ROWS, "server_state soak")


def test_closed_sessions_leave_the_tracker_and_memory_comes_back(
    soak: Run,
) -> None:
    proc, data = soak
    c = data["results"]["soak"]["connect"]
    assert c["sessions"] == 100, c
    assert c["dead"] == 0, c  # stats()["sessions"], the probe excepted
    assert c["bound"] == 0, c  # bound_sessions("shared")
    assert c["version_shared"] == c["version_shared_before"], c  # nothing wrote the key meanwhile
    assert c["rss_after"] <= 1.10 * c["rss_before"], (c, proc.stdout)


def test_a_background_writer_converges_without_error_or_loop(
    soak: Run,
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
