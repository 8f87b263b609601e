"""The history figures (benchmarks/history_bench.py) in smoke mode, through
``benchmarks.run --only history``: every row runs and prints in its table.

Timings from small sizes mean nothing, so no timing target is asserted (``make
bench`` prints them). What the figures rest on is asserted exactly: every
history held what it was configured to hold while it was measured (all the
appends with ``history=<appends>``, none with ``history=0``), and every
``at(seq)`` measured gave the state of that commit.
"""

from __future__ import annotations

import pytest
from bench_support import Run, assert_ran, assert_table, run_smoke

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
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_smoke(["history"], tmp_path_factory.mktemp("history-bench"))
    assert_ran(run)
    return run


def test_every_history_row_prints_in_its_table(smoke: Run) -> None:
    proc, data = smoke
    title = "server_state history figures (smoke mode"
    assert_table(smoke, "history_rows", EXPECTED_ROWS, title)
    assert "History targets missed:" in proc.stdout[proc.stdout.index(title) :]
    assert set(data["results"]["history"]) == {"memory", "history", "at", "update"}


def test_the_histories_measured_held_what_they_were_configured_to(smoke: Run) -> None:
    _, data = smoke
    results = data["results"]["history"]
    memory = results["memory"]
    for kind in ("ints", "strings"):
        assert memory[kind]["kept"] == {"on": memory["appends"], "off": 0}, memory
        assert memory[kind]["held"]["on"] > memory[kind]["held"]["off"] > 0, memory
    update = results["update"]
    assert update["kept"] == update["limits"], update
    assert all(d["correct"] for d in results["at"]["depths"].values()), results["at"]
