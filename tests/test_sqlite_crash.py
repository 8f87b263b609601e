"""The SQLite backend when processes die: three processes increment a
counter and move amounts between two accounts in one file while one of them
after another is killed with SIGKILL (and started again).

The workers are ``tests/sqlite_worker.py`` children. Each appends a line to
its own report file after an increment returned; a kill can land between the
return and the line, so an increment may be in the file without being
reported, at most one per kill (a worker has one operation in flight). The
file's log keeps every commit (the workers never trim it) and names the
process that made it, so every claim is checked per process: what a worker
reported is exactly what the file holds from it, plus at most the one
increment in flight when it was killed.

Workers are known to be running when they say so on stdout; only the moments
of the kills are random.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from server_state import ServerState
from server_state._store import store_from_url
from server_state.backends._codec import make_codec
from server_state.backends._layout import origin_of

WORKER = Path(__file__).with_name("sqlite_worker.py")
ROOT = Path(__file__).resolve().parent.parent
TOTAL = 1000
WORKERS = 3
KILLS = 12


@dataclass
class Run:
    """One process of a worker slot: from its start to its kill or stop."""

    slot: int
    n: int
    proc: subprocess.Popen[str]
    report: Path
    stderr: Path
    killed: bool = False
    final: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"worker{self.slot}.{self.n} (pid {self.proc.pid})"

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr.read_text()[-3000:]
        return ""

    def readline(self, timeout: float) -> str:
        """The worker's next line on stdout, waited for with a deadline."""
        out = self.proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline() if ready else ""
        assert line, (
            f"{self.name} said nothing within {timeout} s (exit {self.proc.poll()}): {self.stderr_tail()}"
        )
        return line


class Workers:
    def __init__(self, url: str, tmp: Path, rng: random.Random) -> None:
        self.url, self.tmp, self.rng = url, tmp, rng
        self.runs: list[Run] = []
        self.current: dict[int, Run] = {}

    def start(self, slot: int) -> Run:
        n = sum(run.slot == slot for run in self.runs)
        report = self.tmp / f"worker{slot}.{n}.report"
        stderr = self.tmp / f"worker{slot}.{n}.stderr"
        with stderr.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, str(WORKER), self.url, str(report), str(self.rng.randrange(1 << 30))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={
                    **os.environ,
                    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                },
            )
        run = Run(slot, n, proc, report, stderr)
        self.runs.append(run)
        self.current[slot] = run
        return run

    def wait_ready(self, run: Run) -> None:
        line = run.readline(30)
        assert line == "ready\n", (run.name, line, run.stderr_tail())

    def kill(self, slot: int) -> None:
        run = self.current[slot]
        assert run.proc.poll() is None, f"{run.name} exited by itself: {run.stderr_tail()}"
        run.proc.send_signal(signal.SIGKILL)  # our own child, by its Popen
        assert run.proc.wait(timeout=10) == -signal.SIGKILL
        run.killed = True

    def stop_all(self) -> None:
        runs = list(self.current.values())
        for run in runs:
            assert run.proc.poll() is None, f"{run.name} exited by itself: {run.stderr_tail()}"
            assert run.proc.stdin is not None
            run.proc.stdin.write("stop\n")
            run.proc.stdin.flush()
        for run in runs:
            line = run.readline(30)
            assert line == "stopped\n", (run.name, line, run.stderr_tail())
        # Nobody writes any more: each mirror catches up with the same file.
        for run in runs:
            assert run.proc.stdin is not None
            run.proc.stdin.write("final\n")
            run.proc.stdin.flush()
        for run in runs:
            run.final = json.loads(run.readline(30))
            assert run.proc.wait(timeout=15) == 0, (run.name, run.stderr_tail())

    def close(self) -> None:
        for run in self.runs:
            if run.proc.poll() is None:
                run.proc.kill()  # our own child, by its Popen
                run.proc.wait(timeout=10)
            for stream in (run.proc.stdin, run.proc.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    seed = random.randrange(1 << 30)
    print(f"kill timing seed {seed}")
    made = Workers(f"sqlite:///{tmp_path}/state.db", tmp_path, random.Random(seed))
    try:
        yield made
    finally:
        made.close()


def _committed(path: Path) -> tuple[list[tuple[int, str, dict[str, Any]]], str, dict[str, int]]:
    """Every commit of the file's log (seq, writer, values written), the
    result of ``PRAGMA integrity_check``, and each key's version: the seq of
    the last commit that wrote it (the log is never trimmed here)."""
    codec = make_codec("tagged", None)
    conn = sqlite3.connect(path)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        commits = []
        for seq, origin, body in conn.execute("SELECT seq, origin, body FROM log ORDER BY seq"):
            _, who = origin_of(origin.encode())
            writes = {op[1]: codec.decode(op[1], op[2]) for op in msgpack.unpackb(body, raw=False)}
            commits.append((seq, who, writes))
        versions = {key: seq for seq, _, writes in commits for key in writes}
    finally:
        conn.close()
    return commits, integrity, versions


def _pid_of(who: str) -> int:
    """The pid in a writer's name, ``host:pid · thread name``."""
    return int(who.split(" · ")[0].rpartition(":")[2])


def _reported(run: Run) -> tuple[list[int], list[str], list[str]]:
    """What ``run`` reported: the values its increments returned, the
    invariant violations it saw, its errors."""
    incs, violations, errors = [], [], []
    text = run.report.read_text() if run.report.exists() else ""
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "i":
            incs.append(int(rest))
        elif kind == "v":
            violations.append(rest)
        else:
            errors.append(rest)
    return incs, violations, errors


@pytest.mark.timeout(120)
def test_increments_and_transfers_survive_processes_killed_in_the_middle(
    workers: Workers, tmp_path: Path
) -> None:
    path = tmp_path / "state.db"
    seed = store_from_url(workers.url, log_kept=10**9)
    state = ServerState(seed)
    state.update(a=TOTAL, b=0)
    seed.close()

    began = time.monotonic()
    for slot in range(WORKERS):
        workers.start(slot)
    for slot in range(WORKERS):
        workers.wait_ready(workers.current[slot])
    rng = workers.rng
    for _ in range(KILLS):
        # A random moment of a running worker's work (not a synchronisation:
        # every worker said it runs).
        time.sleep(rng.uniform(0.02, 0.3))
        slot = rng.randrange(WORKERS)
        workers.kill(slot)
        workers.wait_ready(workers.start(slot))
    time.sleep(rng.uniform(0.02, 0.4))
    workers.stop_all()
    seconds = time.monotonic() - began

    commits, integrity, logged_versions = _committed(path)
    assert integrity == "ok"

    # The log holds every commit, in order, none lost: seq 1, 2, ...
    assert [seq for seq, _, _ in commits] == list(range(1, len(commits) + 1))
    # Every commit that touched the counter raised it by exactly one.
    counter = [(seq, _pid_of(who), writes["c"]) for seq, who, writes in commits if "c" in writes]
    assert [value for _, _, value in counter] == list(range(1, len(counter) + 1))
    final = len(counter)
    # Every transfer moved a and b together, and kept their sum.
    balances: dict[str, int] = {}
    for seq, _, writes in commits:
        if "a" in writes or "b" in writes:
            assert writes.keys() == {"a", "b"}, (seq, writes)
            balances.update({k: writes[k] for k in ("a", "b")})
            assert balances["a"] + balances["b"] == TOTAL, (seq, writes)

    # Per process: what it reported is exactly what the file holds from it,
    # plus at most the one increment in flight when it was killed.
    by_pid: dict[int, list[int]] = {}
    for _, pid, value in counter:
        by_pid.setdefault(pid, []).append(value)
    reported_total = kills = 0
    unreported = []
    for run in workers.runs:
        incs, violations, errors = _reported(run)
        assert not errors, (run.name, errors[:5])
        assert not run.stderr_tail(), (run.name, "logged", run.stderr_tail())
        assert not violations, (run.name, f"a + b != {TOTAL} in a snapshot", violations[:5])
        mine = by_pid.pop(run.proc.pid, [])
        assert incs == mine[: len(incs)], (run.name, "reported increments not in the file as reported")
        extra = mine[len(incs) :]
        assert len(extra) <= (1 if run.killed else 0), (
            run.name,
            "increments in the file never reported",
            extra,
        )
        unreported += extra
        reported_total += len(incs)
        kills += run.killed
    assert not by_pid, f"commits of the counter by processes that were not workers: {by_pid}"
    assert kills == KILLS
    # Every reported increment is counted exactly once; an increment in flight
    # at a kill may have landed (its process died before reporting it).
    assert reported_total <= final <= reported_total + kills
    assert final == reported_total + len(unreported)

    # The file's state, read by a store opened on it now, and every survivor's mirror.
    fresh = ServerState(store_from_url(workers.url))
    try:
        values = {k: fresh[k] for k in ("a", "b", "c")}
        versions = {k: fresh.version(k) for k in ("a", "b", "c")}
    finally:
        fresh._store.close()
    assert values["c"] == final
    assert values["a"] + values["b"] == TOTAL
    assert versions == {k: logged_versions[k] for k in ("a", "b", "c")}
    assert versions["c"] == counter[-1][0]
    for run in workers.current.values():
        assert run.final["values"] == values, run.name
        assert run.final["versions"] == versions, run.name

    print(
        f"{seconds:.1f} s: {len(commits)} commits, {final} increments ({reported_total} reported, "
        f"{len(unreported)} landed unreported), {kills} kills, {len(workers.runs)} processes"
    )
    assert final > 10 * WORKERS, "the workers hardly ran"
