"""The history figures (benchmarks/history_bench.py) in smoke mode, through
``benchmarks.run --only history``: every row runs and prints in its table.

Timings from small sizes mean nothing, so no timing target is asserted (``make
bench`` prints them). What the figures rest on is asserted exactly: every
history held what it was configured to hold while it was measured (all the
appends with ``history=<appends>``, none with ``history=0``), and every
``at(seq)`` measured gave the state of that commit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every row of the history table in smoke mode, by id (see benchmarks/history_bench.py).
EXPECTED_ROWS = [
    "history_memory_ints",
    "history_memory_strings",
    "history_list_10",
    "history_list_100",
    "history_list_1000",
    "history_list_flat",
    "history_key_rare",
    "at_1",
    "at_10",
    "at_100",
    "at_999",
    "at_flat",
    "update_counter_off",
    "update_counter_default",
    "update_counter_big",
    "update_append_off",
    "update_append_default",
    "update_append_big",
    "update_upstream",
]

pytestmark = [pytest.mark.bench, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def smoke(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("history-bench") / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--only", "history", "--json", str(out)],
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


def test_every_history_row_prints_in_its_table(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    proc, data = smoke
    rows = {row["id"]: row for row in data["history_rows"]}
    assert list(rows) == EXPECTED_ROWS, f"rows: {list(rows)}\n{proc.stdout}"
    table = proc.stdout[proc.stdout.index("server_state history figures (smoke mode") :]
    for row in rows.values():
        assert f"| {row['benchmark']} " in table, f"row {row['id']} not printed:\n{proc.stdout}"
        assert row["ours"] and row["ours"] != "-", row
        assert row["met"] in ("yes", "no", "-"), row
    assert "History targets missed:" in table
    assert set(data["results"]["history"]) == {"memory", "history", "at", "update"}


def test_the_histories_measured_held_what_they_were_configured_to(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    _, data = smoke
    results = data["results"]["history"]
    memory = results["memory"]
    for kind in ("ints", "strings"):
        assert memory[kind]["kept"] == {"on": memory["appends"], "off": 0}, memory
        assert memory[kind]["held"]["on"] > memory[kind]["held"]["off"] > 0, memory
    update = results["update"]
    assert update["kept"] == update["limits"], update
    assert all(d["correct"] for d in results["at"]["depths"].values()), results["at"]
