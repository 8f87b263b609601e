"""The benchmarks in smoke mode: every benchmark runs and prints its row.

Figures from tiny counts mean nothing, so no target is asserted here (``make
bench`` prints them). One correctness property is asserted exactly: a write
reruns only the sessions that read the key (10 sessions, 1 reading it: 1 rerun).
The Redis backend figures (benchmarks/redis_bench.py, on a redis-server of
their own) and the hardening figures (benchmarks/hardening.py) run too and
print every row.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every row the table must have, by id (see benchmarks/run.py).
EXPECTED_ROWS = [
    "read",
    "increment",
    "increment_classic",
    "append_classic_1000",
    "append_classic_10000",
    "append_classic_100000",
    "append_update_1000",
    "append_update_10000",
    "append_update_100000",
    "append_update_flat",
    "append_update_gcoff_1000",
    "append_update_gcoff_10000",
    "append_update_gcoff_100000",
    "append_update_gcoff_flat",
    "snapshot_10",
    "snapshot_10000",
    "snapshot_after_write_10",
    "snapshot_after_write_10000",
    "memory",
    "append_snapshots_held",
    "propagation_p50",
    "propagation_p95",
    "fanout_gc_off",
    "fanout_gc_on",
    "unbound",
]

# Every row of the Redis backend table, by id (see benchmarks/redis_bench.py).
EXPECTED_REDIS_ROWS = [
    "redis_read",
    "redis_read_peek",
    "redis_update",
    "redis_set",
    "redis_cross_replica_p50",
    "redis_cross_replica_p99",
    "redis_resync",
    "redis_resync_incremental",
    "redis_click_render",
    "redis_click_render_p95",
    "redis_click_render_gc_off",
]

# Every row of the hardening table, by id (see benchmarks/hardening.py).
EXPECTED_HARDENING_ROWS = [
    "equal_write_ints",
    "equal_write_floats",
    "equal_write_dicts",
    "transact_small",
    "transact_mid",
    "transact_large",
    "transact_flat",
    "transact_progress",
    "burst_snapshot_few",
    "burst_writer_blocked_few",
    "burst_snapshot_distinct",
    "burst_writer_blocked_distinct",
    "churn_rss",
    "churn_keys",
    "churn_iter",
    "churn_repr",
    "replaced_vector_held",
    "first_read_concurrent",
    "append_ints",
    "append_dicts",
    "append_tuples",
    "append_namedtuples",
    "append_frozensets",
    "named_snapshot",
    "snapshot_order",
]

pytestmark = [pytest.mark.bench, pytest.mark.server, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def smoke(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    proc = subprocess.run(
        # every group but the soak, which tests/test_soak.py runs on its own
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--only", "micro,propagation,fanout,unbound,redis,hardening,history",
         "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    return proc, data


def test_every_benchmark_runs_and_prints(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    proc, data = smoke
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-6000:]}"
    )
    assert not data["failures"]
    rows = {row["id"]: row for row in data["rows"]}
    assert list(rows) == EXPECTED_ROWS, f"rows: {list(rows)}\n{proc.stdout}"
    for row in rows.values():
        assert f"| {row['benchmark']} " in proc.stdout, f"row {row['id']} not printed:\n{proc.stdout}"
        assert row["ours"] and row["ours"] != "-", row


def test_a_write_reruns_exactly_the_bound_sessions(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    proc, data = smoke
    assert proc.returncode == 0, proc.stderr[-6000:]
    ours = data["results"]["unbound"]["ours"]
    assert ours["sessions"] == 10 and ours["bound"] == 1
    assert ours["reruns"] == 1, ours
    assert ours["bound_reruns"] == 1 and ours["unbound_reruns"] == 0, ours
    assert ours["readers_updated"] == 1, ours


def test_every_redis_figure_runs_and_prints(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    proc, data = smoke
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-6000:]}"
    )
    assert not data["failures"]
    rows = {row["id"]: row for row in data["redis_rows"]}
    assert list(rows) == EXPECTED_REDIS_ROWS, f"rows: {list(rows)}\n{proc.stdout}"
    table = proc.stdout[proc.stdout.index("server_state Redis backend figures") :]
    for row in rows.values():
        assert f"| {row['benchmark']} " in table, f"row {row['id']} not printed:\n{proc.stdout}"
        assert row["redis"] and row["redis"] != "-", row
        assert row["met"] in ("yes", "no", "-"), row
    assert set(data["results"]["redis"]) == {"read", "write", "cross", "resync", "click"}


def test_every_hardening_figure_runs_and_prints(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    proc, data = smoke
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-6000:]}"
    )
    assert not data["failures"]
    rows = {row["id"]: row for row in data["hardening_rows"]}
    assert list(rows) == EXPECTED_HARDENING_ROWS, f"rows: {list(rows)}\n{proc.stdout}"
    table = proc.stdout[proc.stdout.index("server_state hardening figures") :]
    for row in rows.values():
        assert f"| {row['benchmark']} " in table, f"row {row['id']} not printed:\n{proc.stdout}"
        assert row["ours"] and row["ours"] != "-", row
        assert row["met"] in ("yes", "no", "-"), row
    assert set(data["results"]["hardening"]) == {"6", "9", "10", "13", "14", "15", "16", "17"}
