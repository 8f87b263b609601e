"""The pure-Python pyrsistent figures (benchmarks/purepy_bench.py) in smoke
mode, through ``benchmarks.run --only purepy``: every row runs and prints in
its table, on the pure-Python vector (each child blocks the C extension).
Timings from small sizes mean nothing; what they rest on is asserted: an
unchanged pyrsistent write kept the very object and its version.
"""

from __future__ import annotations

import pytest
from bench_support import Run, assert_ran, assert_table, run_smoke

EXPECTED_ROWS = [
    "purepy_append_1000",
    "purepy_append_10000",
    "purepy_append_100000",
    "purepy_append_flat",
    "purepy_unchanged_write",
]

pytestmark = [pytest.mark.bench, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_smoke(["purepy"], tmp_path_factory.mktemp("purepy-bench"))
    assert_ran(run)
    return run


def test_every_purepy_row_prints_in_its_table(smoke: Run) -> None:
    assert_table(
        smoke, "purepy_rows", EXPECTED_ROWS, "server_state on pyrsistent's pure-Python vector (smoke mode"
    )


def test_the_figures_were_taken_on_the_pure_python_vector(smoke: Run) -> None:
    _, data = smoke
    results = data["results"]["purepy"]
    assert results["append"]["vector"] == results["unchanged"]["vector"] == "pure-Python PVector"
    assert results["unchanged"]["same_object"] and results["unchanged"]["version_kept"]
