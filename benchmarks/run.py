"""Benchmarks: server_state vs streamlit-server-state 0.20.2, one table, then
the tables of the groups of ours alone.

    python -m benchmarks.run [--full|--smoke] [--json out.json] [--only GROUPS]

Only the entry point: the groups are ``upstream.GROUPS`` (the first table) and
the ``GROUP`` of each module in ``TABLES``; what each measures, the modes and
the results are in benchmarks/README.md. Exit status: 0 when every benchmark
ran, whether or not targets were met; 1 when one failed to run.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from . import (
    expiry_bench,
    failover,
    hardening,
    history_bench,
    load_chat,
    presence_bench,
    purepy_bench,
    redis_bench,
    redis_scale,
    soak,
    sqlite_bench,
    upstream,
    widget_bench,
)
from ._core import Group, add_mode_args, finish

# The groups printed as tables of their own, in the order they run and print; all run after the
# cross-session servers have stopped: they start servers of their own, or are in-process figures
# that want nothing else on the CPUs.
TABLES: dict[str, Group] = {
    "redis": redis_bench.GROUP,
    "redis_scale": redis_scale.GROUP,
    "sqlite": sqlite_bench.GROUP,
    "load": load_chat.GROUP,
    "soak": soak.GROUP,
    "failover": failover.GROUP,
    "hardening": hardening.GROUP,
    "history": history_bench.GROUP,
    "expiry": expiry_bench.GROUP,
    "presence": presence_bench.GROUP,
    "purepy": purepy_bench.GROUP,
    "widgets": widget_bench.GROUP,
}
GROUPS = (*upstream.GROUPS, *TABLES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    add_mode_args(parser)
    parser.add_argument(
        "--only", default=",".join(GROUPS), help=f"comma-separated subset of {','.join(GROUPS)}"
    )
    args = parser.parse_args(argv)
    mode = args.mode or "full"
    groups = {g.strip() for g in args.only.split(",") if g.strip()}
    if groups - set(GROUPS):
        parser.error(f"unknown groups: {sorted(groups - set(GROUPS))}")

    started = time.monotonic()
    rows, results, failures = upstream.run(mode, groups)
    tables: dict[str, tuple[list[Any], float]] = {}  # group -> its rows, its seconds
    for name, group in TABLES.items():
        if name in groups:
            table_started = time.monotonic()
            table_rows, results[name], table_failures = group.run_all(mode)
            tables[name] = (table_rows, time.monotonic() - table_started)
            failures += table_failures
    env = upstream.environment()
    print(f"server_state benchmarks ({mode} mode, {time.monotonic() - started:.0f} s)")
    if groups & set(upstream.GROUPS):  # else the table would be empty
        print()
        print(upstream.report(mode, rows, env))
    for name, (table_rows, seconds) in tables.items():
        print()
        print(TABLES[name].report(mode, table_rows, seconds))
    output = {
        "mode": mode,
        "environment": env,
        "rows": [r.as_json(True) for r in rows],
        **{
            f"{name}_rows": [r.as_json(len(g.head) == 6) for r in tables[name][0]] if name in tables else []
            for name, g in TABLES.items()
        },
        "results": results,
        "failures": failures,
    }
    return finish(args.json, output, failures)


if __name__ == "__main__":
    sys.exit(main())
