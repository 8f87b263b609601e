"""What the benchmark groups with a table of their own share, written once.

A group (benchmarks/history_bench.py, hardening.py, soak.py) describes itself
with a ``Suite``: its module, its label, its title, its notes, its targets
line. The suite gives it its table and the report printed after
``benchmarks.run``'s own table (``report``), and the command line of
``python -m benchmarks.<group>`` (``main``: ``--full``/``--smoke``,
``--json``, the ``FAILED`` lines and the exit status). A ``ChildSuite``
measures each item in an interpreter of its own (``--measure ITEM``, figures
back as the last line of its stdout, in JSON), so that memory figures start
from a clean heap, one item's garbage does not slow the next, and a hang is
cut off by a timeout instead of stopping the run; it adds ``--only``.

``render`` and ``section`` take any dataclass rows, so benchmarks/run.py's
table (ours beside upstream) uses them too, as redis_bench.py's could.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# The smoke line of a group whose smoke figures only prove that they run.
SMOKE_FIGURES = "Smoke mode: small sizes, figures and 'met' are meaningless; only that every figure ran."

Results = dict[str, Any]
Sizes = dict[str, Any]
Outcome = tuple[list["Row"], Results, list[str]]  # rows, raw results, failures


@dataclass
class Row:
    """One line of a table of ours alone."""

    id: str
    benchmark: str
    ours: str
    target: str
    met: str  # "yes", "no", or "-" (information only)


def yes(ok: bool) -> str:
    """A "met" cell."""
    return "yes" if ok else "no"


def finish(json_path: Path | None, output: dict[str, Any], failures: list[str]) -> int:
    """The end of a command: ``output`` written to ``json_path`` (when given),
    a ``FAILED`` line on stderr for each failure, and the exit status: 1 when
    something failed to run (whether or not targets were met), else 0."""
    if json_path:
        json_path.write_text(json.dumps(output, indent=1))
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


def logger(label: str) -> Callable[[str], None]:
    """A ``log(msg)`` writing ``[label HH:MM:SS] msg`` to stderr."""

    def log(msg: str) -> None:
        print(f"[{label} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    return log


def render(rows: Sequence[Any], head: Any) -> str:
    """``rows`` (dataclass instances) as a Markdown table under ``head`` (one
    of the same class holding the column titles); every field but ``id`` is a
    column, padded to its widest cell."""
    cols = [f.name for f in fields(head) if f.name != "id"]
    widths = {c: max(len(getattr(r, c)) for r in [head, *rows]) for c in cols}

    def line(r: Any) -> str:
        return "| " + " | ".join(getattr(r, c).ljust(widths[c]) for c in cols) + " |"

    sep = "|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def section(rows: Sequence[Any], head: Any, notes: str, smoke: str | None, missed: str) -> str:
    """The table, its notes, ``smoke`` (the smoke-mode line; ``None`` in full
    mode) and ``missed``: the ids of the rows whose ``met`` is "no"."""
    ids = [r.id for r in rows if r.met == "no"]
    parts = [render(rows, head), "", notes]
    if smoke is not None:
        parts.append(smoke)
    parts.append(f"{missed}: {', '.join(ids) if ids else 'none'}")
    return "\n".join(parts)


@dataclass(frozen=True, kw_only=True)
class Suite:
    """A group of figures of ours alone, printed as a table of its own.

    ``run`` gives the rows, raw results and failures of a mode; a
    ``ChildSuite`` runs items in child interpreters instead.
    """

    module: str  # "benchmarks.soak": ``python -m`` runs it, and its children
    label: str  # the log prefix and the table's first column title
    title: str  # the report's first line, before " (<mode> mode, <n> s)"
    description: str  # ``--help``'s first line
    mode_help: Mapping[str, str]  # ``--help`` of --full and --smoke
    notes: Callable[[str], str]  # the notes under the table, for a mode
    smoke: str  # the line printed in smoke mode, under the notes
    missed: str  # "Soak targets missed": the last line, before the ids
    run: Callable[[str], Outcome] | None = None
    items: tuple[str, ...] = ()  # what --only picks from; none: no --only (and no --measure)
    item_prefix: str = ""  # how logs and failures name an item ("#" + "6"); --only accepts both

    def log(self, msg: str) -> None:
        logger(self.label)(msg)

    def name(self, item: str) -> str:
        return f"{self.item_prefix}{item}"

    def report(self, mode: str, rows: Sequence[Row], seconds: float) -> str:
        """Title, table, notes, smoke-mode line, targets missed."""
        return "\n".join(
            [
                f"{self.title} ({mode} mode, {seconds:.0f} s)",
                "",
                section(
                    rows,
                    Row("", self.label, "ours", "target", "met"),
                    self.notes(mode),
                    self.smoke if mode == "smoke" else None,
                    self.missed,
                ),
            ]
        )

    def run_all(self, mode: str, items: tuple[str, ...] | None = None) -> Outcome:
        """Rows, raw results and failures of a run in ``mode``."""
        if self.run is None:
            raise NotImplementedError(f"{self.module}: no run given")
        return self.run(mode)

    def measure(self, item: str, mode: str) -> Results:
        """One item's figures, in this process (``--measure``)."""
        raise NotImplementedError(f"{self.module}: no items to measure")

    def main(self, argv: list[str] | None = None) -> int:
        """``python -m <module>``: print the report; exit 1 when something failed to run."""
        parser = argparse.ArgumentParser(prog=f"python -m {self.module}", description=self.description)
        size = parser.add_mutually_exclusive_group()
        for mode in ("full", "smoke"):
            size.add_argument(
                f"--{mode}", action="store_const", dest="mode", const=mode, help=self.mode_help[mode]
            )
        parser.add_argument("--json", type=Path, help="also write rows and raw results here")
        if self.items:
            parser.add_argument(
                "--only",
                default=",".join(self.items),
                help=f"comma-separated subset of {','.join(self.items)}",
            )
            # internal: one item, JSON out
            parser.add_argument("--measure", choices=self.items, help=argparse.SUPPRESS)
        args = parser.parse_args(argv)
        mode = args.mode or "full"
        items = None
        if self.items:
            if args.measure:
                print(json.dumps(self.measure(args.measure, mode)))
                return 0
            items = tuple(i.strip().lstrip(self.item_prefix) for i in args.only.split(",") if i.strip())
            unknown = set(items) - set(self.items)
            if unknown:
                parser.error(f"unknown items: {sorted(unknown)}")
        started = time.monotonic()
        rows, results, failures = self.run_all(mode, items)
        print(self.report(mode, rows, time.monotonic() - started))
        output = {"mode": mode, "rows": [asdict(r) for r in rows], "results": results, "failures": failures}
        return finish(args.json, output, failures)


@dataclass(frozen=True, kw_only=True)
class ChildSuite(Suite):
    """A suite whose items each run in a fresh interpreter of their own."""

    sizes: Mapping[str, Sizes]  # per mode, what the measures get
    child_timeout: Mapping[str, float]  # per mode, seconds before a child is killed (its item fails)
    measures: Mapping[str, Callable[[Sizes], Results]]  # item -> its figures (JSON-able)
    rows_for: Callable[[str, Results], list[Row]]  # item, its figures -> its rows
    child_env: Mapping[str, str] = field(default_factory=dict)  # set in each child's environment

    def measure(self, item: str, mode: str) -> Results:
        return self.measures[item](self.sizes[mode])

    def measure_in_child(self, item: str, mode: str) -> Results:
        """Run one item in a fresh interpreter; its figures come back as JSON."""
        proc = subprocess.run(
            [sys.executable, "-m", self.module, "--measure", item, f"--{mode}"],
            cwd=ROOT,
            env={**os.environ, **self.child_env},
            capture_output=True,
            text=True,
            timeout=self.child_timeout[mode],
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"item {item}: exit {proc.returncode}\n{proc.stderr[-4000:]}")
        result: Results = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def run_all(self, mode: str, items: tuple[str, ...] | None = None) -> Outcome:
        """Every item (each in a child process): rows, raw results, failures."""
        rows: list[Row] = []
        results: Results = {}
        failures: list[str] = []
        for item in self.items if items is None else items:
            started = time.monotonic()
            try:
                results[item] = self.measure_in_child(item, mode)
                rows += self.rows_for(item, results[item])
                self.log(f"{self.name(item)}: {time.monotonic() - started:.1f} s")
            except Exception as exc:
                failures.append(f"{self.label} {self.name(item)}: {exc}")
                self.log(f"{self.name(item)} FAILED")
        return rows, results, failures
