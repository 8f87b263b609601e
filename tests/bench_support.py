"""What the benchmark smoke tests share: one ``python -m benchmarks.run
--smoke`` run in a subprocess, and the check that a table printed every row
it should."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

Run = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


def run_smoke(groups: Sequence[str], out_dir: Path, *, timeout: float = 280) -> Run:
    """``python -m benchmarks.run --smoke --only <groups> --json <out_dir>/smoke.json``
    from the repository root: the finished process and the JSON it wrote
    (``{}`` when it wrote none)."""
    out = out_dir / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--only", ",".join(groups), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    return proc, data


def failed(proc: subprocess.CompletedProcess[str]) -> str:
    """What to show when the run failed: its exit status, stdout, stderr's tail."""
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-6000:]}"


def assert_ran(run: Run) -> None:
    """The run exited 0, wrote its JSON and reported no failure."""
    proc, data = run
    assert proc.returncode == 0 and data and not data["failures"], failed(proc)


def assert_table(
    run: Run, key: str, expected: Sequence[str], title: str, *, figure: str = "ours"
) -> dict[str, dict[str, Any]]:
    """The rows of ``data[key]`` are ``expected``, in that order, and each is
    printed in the table from the line starting ``title`` on, with a figure in
    its ``figure`` column and a "met" of yes, no or "-". Returns them by id."""
    proc, data = run
    rows = {row["id"]: row for row in data[key]}
    assert list(rows) == list(expected), f"rows: {list(rows)}\n{proc.stdout}"
    assert title in proc.stdout, f"no {title!r} printed:\n{proc.stdout}"
    table = proc.stdout[proc.stdout.index(title) :]
    for row in rows.values():
        assert f"| {row['benchmark']} " in table, f"row {row['id']} not printed:\n{proc.stdout}"
        assert row[figure] and row[figure] != "-", row
        assert row["met"] in ("yes", "no", "-"), row
    return rows
