"""The benchmarks in smoke mode: every benchmark runs and prints its row.

Figures from tiny counts mean nothing, so no target is asserted here (``make
bench`` prints them). One correctness property is asserted exactly: a write
reruns only the sessions that read the key (10 sessions, 1 reading it: 1 rerun).
The Redis backend figures (benchmarks/redis_bench.py, on a redis-server of
their own), how far one Redis carries an app (benchmarks/redis_scale.py; two
counts asserted: every counter exact, every follower saw every commit), the
SQLite backend figures (benchmarks/sqlite_bench.py, on files of their own) and
the hardening figures (benchmarks/hardening.py) run too and print every row.
"""

from __future__ import annotations

import pytest
from bench_support import Run, assert_table, failed, run_smoke

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
    "redis_update_evalsha",
    "redis_set",
    "redis_cpu_1",
    "redis_cpu_3",
    "redis_cross_replica_p50",
    "redis_cross_replica_p99",
    "redis_resync",
    "redis_resync_incremental",
    "redis_append_small",
    "redis_append_medium",
    "redis_append_large",
    "redis_append_flat",
    "redis_map_set",
    "redis_append_classic",
    "redis_resync_big",
    "redis_append_cross_p50",
    "redis_click_render",
    "redis_click_render_p95",
    "redis_click_render_gc_off",
]

# Every row of the Redis scale table in smoke mode (N = 1, 2; full mode adds n4, n8), by id
# (see benchmarks/redis_scale.py).
EXPECTED_REDIS_SCALE_ROWS = [
    "redis_scale_n1",
    "redis_scale_n2",
    "redis_fanout_cpu",
    "redis_fanout_lag_p99",
    "redis_fanout_bytes",
]

# Every row of the SQLite backend table, by id (see benchmarks/sqlite_bench.py).
EXPECTED_SQLITE_ROWS = [
    "sqlite_update",
    "sqlite_update_full",
    "sqlite_update_memory",
    "sqlite_cross_p50",
    "sqlite_cross_p99",
    "sqlite_click_render",
    "sqlite_click_render_p95",
    "sqlite_start",
    "sqlite_start_no_history",
    "sqlite_start_big",
    "sqlite_append_small",
    "sqlite_append_medium",
    "sqlite_append_large",
    "sqlite_append_flat",
    "sqlite_append_bytes_flat",
    "sqlite_idle_cpu",
]

# Every row of the failover table, by id (see benchmarks/failover.py).
EXPECTED_FAILOVER_ROWS = [
    "failover_ws",
    "failover_shown",
    "failover_many",
    "failover_many_runs",
    "failover_burst",
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

# Every row of the expiry table, by id (see benchmarks/expiry_bench.py).
EXPECTED_EXPIRY_ROWS = [
    "expiry_assign_memory",
    "expiry_update_memory",
    "expiry_assign_sqlite",
    "expiry_update_sqlite",
    "expiry_many_set",
    "expiry_many_memory",
    "expiry_idle_cpu",
    "expiry_rate",
]

# Every row of the shared-widget table (see benchmarks/widget_bench.py).
EXPECTED_WIDGET_ROWS = ["widget_edit_render", "widget_edit_render_p95", "widget_edit_render_fast"]

pytestmark = [pytest.mark.bench, pytest.mark.server, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Run:
    # every group but the soak, which tests/test_soak.py runs on its own
    groups = [
        "micro",
        "propagation",
        "fanout",
        "unbound",
        "redis",
        "redis_scale",
        "sqlite",
        "failover",
        "hardening",
        "history",
        "expiry",
        "widgets",
        "presence",
    ]
    return run_smoke(groups, tmp_path_factory.mktemp("bench"))


def test_every_presence_figure_runs_and_a_join_sends_one_entry(smoke: Run) -> None:
    _, data = smoke
    rows = ["join_memory", "join_redis", "join_bytes_redis"]
    assert_table(smoke, "presence_rows", rows, "server_state who is here figures")
    sent = data["results"]["presence"]["bytes"]  # a room of 1,000 members, in smoke mode too
    assert sent["members"] == 1_000 and sent["per_join"] < sent["whole"] / 20, sent


def test_every_benchmark_runs_and_prints(smoke: Run) -> None:
    proc, data = smoke
    assert proc.returncode == 0, failed(proc)
    assert not data["failures"]
    assert_table(smoke, "rows", EXPECTED_ROWS, "server_state benchmarks (smoke mode")


def test_a_write_reruns_exactly_the_bound_sessions(smoke: Run) -> None:
    proc, data = smoke
    assert proc.returncode == 0, proc.stderr[-6000:]
    ours = data["results"]["unbound"]["ours"]
    assert ours["sessions"] == 10 and ours["bound"] == 1
    assert ours["reruns"] == 1, ours
    assert ours["bound_reruns"] == 1 and ours["unbound_reruns"] == 0, ours
    assert ours["readers_updated"] == 1, ours


def test_every_redis_figure_runs_and_prints(smoke: Run) -> None:
    proc, data = smoke
    assert proc.returncode == 0, failed(proc)
    assert not data["failures"]
    assert_table(smoke, "redis_rows", EXPECTED_REDIS_ROWS, "server_state Redis backend figures")
    assert set(data["results"]["redis"]) == {"read", "write", "cross", "resync", "patch", "click"}


def test_every_redis_scale_figure_runs_and_prints(smoke: Run) -> None:
    proc, data = smoke
    assert proc.returncode == 0, failed(proc)
    assert not data["failures"]
    title = "server_state: how far one Redis carries an app"
    rows = assert_table(smoke, "redis_scale_rows", EXPECTED_REDIS_SCALE_ROWS, title)
    results = data["results"]["redis_scale"]
    for ramp in results["load"]["by_n"]:  # counts, not timings: no update lost or doubled
        assert not ramp["lost"] and not ramp["errors"], ramp
    fanout = results["fanout"]
    assert fanout["caught_up"] and fanout["seen"] == [fanout["commits"]] * fanout["followers"], fanout
    assert rows["redis_fanout_lag_p99"]["met"] == "-", rows


def test_every_sqlite_figure_runs_and_prints(smoke: Run) -> None:
    proc, data = smoke
    assert proc.returncode == 0, failed(proc)
    assert not data["failures"]
    assert_table(smoke, "sqlite_rows", EXPECTED_SQLITE_ROWS, "server_state SQLite backend figures")
    results = data["results"]["sqlite"]
    assert set(results) == {"update", "cross", "click", "start", "append", "idle"}
    assert results["cross"]["writes"] == 20  # process B saw every write, in order


def test_every_failover_figure_runs_and_prints(smoke: Run) -> None:
    proc, data = smoke
    assert proc.returncode == 0, failed(proc)
    assert not data["failures"]
    rows = assert_table(smoke, "failover_rows", EXPECTED_FAILOVER_ROWS, "server_state failover figures")
    assert rows["failover_many_runs"]["met"] == "yes", rows  # a count, not a timing: each tab ran once


def test_every_hardening_figure_runs_and_prints(smoke: Run) -> None:
    proc, data = smoke
    assert proc.returncode == 0, failed(proc)
    assert not data["failures"]
    assert_table(smoke, "hardening_rows", EXPECTED_HARDENING_ROWS, "server_state hardening figures")
    assert set(data["results"]["hardening"]) == {"6", "9", "10", "13", "14", "15", "16", "17"}


def test_every_expiry_figure_runs_and_prints(smoke: Run) -> None:
    proc, data = smoke
    assert proc.returncode == 0, failed(proc)
    assert not data["failures"]
    rows = assert_table(smoke, "expiry_rows", EXPECTED_EXPIRY_ROWS, "server_state expiry figures")
    # counts, not timings: every key got its deadline, every deadline fired
    assert rows["expiry_many_set"]["met"] == "-" and rows["expiry_rate"]["met"] == "-"
    results = data["results"]["expiry"]
    assert results["many"]["idle"]["pending"] == results["many"]["n"], results["many"]
    assert results["expire"]["left"] == 0 and results["expire"]["expired"] == results["expire"]["n"]


def test_every_shared_widget_figure_runs_and_prints(smoke: Run) -> None:
    proc, data = smoke
    assert proc.returncode == 0, failed(proc)
    assert not data["failures"]
    assert_table(smoke, "widgets_rows", EXPECTED_WIDGET_ROWS, "server_state shared-widget figures")
