"""What every benchmark group shares, written once: the row, its target, the
table, the percentile, the child process that measures one item, and the
command line of ``python -m benchmarks.<group>``.

A ``Row`` is data: an id, a label, the figure (``value`` in ``unit``), what it
is compared with (``base``: upstream, the memory backend, a floor), and a
``Target``: a number and a comparison, applied to the value or to the ratio
value / base; the target's text is rendered from that number. A ``Group``
describes a table: its title and columns, its notes, and how its rows are
made (``run``, or ``measures`` + ``rows_for`` run each item in a child
interpreter of its own, so that memory figures start from a clean heap and a
hang is cut off by a timeout).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
SMOKE_FIGURES = "Smoke mode: small sizes, figures and 'met' are meaningless; only that every figure ran."

Results = dict[str, Any]
Sizes = dict[str, Any]
Outcome = tuple[list["Row"], Results, list[str]]  # rows, raw results, failures
Measure = Callable[[str], Results]  # an item's figures, by its name
OPS = {"<=": ("≤", float.__le__), "<": ("<", float.__lt__), "==": ("=", float.__eq__)}


def by_mode(**sizes: tuple[Any, Any]) -> dict[str, Sizes]:
    """``name=(full, smoke)`` pairs as ``{"full": {name: full}, "smoke": {name: smoke}}``."""
    return {mode: {k: v[i] for k, v in sizes.items()} for i, mode in enumerate(("full", "smoke"))}


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1), linear interpolation between closest ranks."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def fmt(v: float, unit: str, *, exact: bool = False) -> str:
    """``v`` in ``unit``: "s" (ns..s, scaled), "ms" (seconds shown in whole ms),
    "B" (MB), "x" (a ratio), "%" (a fraction), "" (a count) or any other
    (appended). ``exact``: the shortest form (a target's number)."""
    num = (lambda x, d: f"{x:g}") if exact else (lambda x, d: f"{x:.{d}f}")
    if unit == "s":
        for scale, name, d in ((1e-6, "ns", 0), (1e-3, "µs", 2), (1.0, "ms", 2)):
            if abs(v) < scale:
                return f"{num(v / scale * 1e3, d)} {name}"
        return f"{num(v, 2)} s"
    if unit == "ms":
        return f"{num(v * 1e3, 0)} ms"
    if unit == "B":
        return f"{num(v / MB, 1)} MB"
    if unit == "x":
        return f"{num(v, 2)}x"
    if unit == "%":
        return f"{num(v * 100, 0)}%"
    if unit == "":
        return f"{v:,.0f}" if not exact else f"{v:g}"
    return f"{num(v, 1)} {unit}"


@dataclass(frozen=True)
class Target:
    """``value <op> limit`` (in the row's unit), or ``ratio <op> limit`` when
    ``of`` names the base (``Target(0.5, of="upstream")``: ≤ 0.5x upstream)."""

    limit: float
    op: str = "<="
    of: str = ""  # the base's name: the target is on the ratio
    note: str = ""  # appended to the text: "(O(1) per entry)"

    def text(self, unit: str) -> str:
        number = fmt(self.limit, "x" if self.of else unit, exact=True)
        return " ".join(p for p in (OPS[self.op][0], number, self.of, self.note) if p)

    def met(self, value: float | None, ratio: float | None) -> bool:
        x = ratio if self.of else value
        return x is not None and not math.isnan(x) and OPS[self.op][1](float(x), float(self.limit))


@dataclass
class Row:
    """One line of a table: the figure, its base, its targets (all must be met, and ``ok``)."""

    id: str
    label: str
    value: float | None  # None: the figure is text only (``note``)
    unit: str = ""
    target: Target | tuple[Target, ...] | None = None
    note: str = ""  # after the figure: details, counts, the figure itself when it is not a number
    base: float | None = None  # what the value is compared with, in the same unit
    base_note: str = ""  # after the base: "(memory)", or the base itself when it is text
    ok: bool = True  # conditions beyond the targets (a state checked, a count of runs)
    ratio_digits: int = 2

    @property
    def targets(self) -> tuple[Target, ...]:
        return (
            () if self.target is None else (self.target,) if isinstance(self.target, Target) else self.target
        )

    @property
    def ratio(self) -> float | None:
        return None if self.value is None or not self.base else self.value / self.base

    @property
    def met(self) -> str:
        if not self.targets:
            return "-" if self.ok else "no"
        return "yes" if self.ok and all(t.met(self.value, self.ratio) for t in self.targets) else "no"

    def cells(self, base_column: bool) -> dict[str, str]:
        """The rendered cells after the label: ours, [base, ratio,] target, met."""
        figure = " ".join(
            p for p in ("" if self.value is None else fmt(self.value, self.unit), self.note) if p
        )
        out = {"ours": figure or "-", "target": self.target_text(), "met": self.met}
        if not base_column:
            return out
        base = " ".join(
            p for p in ("" if self.base is None else fmt(self.base, self.unit), self.base_note) if p
        )
        ratio = "-" if self.ratio is None else f"{self.ratio:.{self.ratio_digits}f}x"
        return {"ours": out["ours"], "base": base or "-", "ratio": ratio, **out}

    def target_text(self) -> str:
        return ", ".join(t.text(self.unit) for t in self.targets) or "-"

    def as_json(self, base_column: bool) -> dict[str, Any]:
        limits = [{"limit": t.limit, "op": t.op, "of": t.of} for t in self.targets]
        return {
            "id": self.id,
            "benchmark": self.label,
            **self.cells(base_column),
            "value": self.value,
            "unit": self.unit,
            "base_value": self.base,
            "targets": limits,
        }


def labelled(labels: Mapping[str, str], **fields: Any) -> Callable[..., Row]:
    """``row(id, value, ...)``: a ``Row`` whose label is ``labels[id]`` formatted with ``fields``."""
    return lambda rid, *args, **kw: Row(rid, labels[rid].format(**fields), *args, **kw)


def render(rows: Sequence[Row], head: Sequence[str]) -> str:
    """``rows`` as a Markdown table; ``head``: the column titles (benchmark,
    ours, [base, ratio,] target, met), each column padded to its widest cell."""
    base = len(head) == 6
    lines = [list(head), *([r.label, *r.cells(base).values()] for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def logger(label: str) -> Callable[[str], None]:
    """A ``log(msg)`` writing ``[label HH:MM:SS] msg`` to stderr."""

    def log(msg: str) -> None:
        print(f"[{label} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    return log


def median_calls(
    fn: Callable[[], Any], budget: float, *, min_calls: int = 5, max_calls: int = 20_000
) -> float:
    """Median seconds of one ``fn()`` over as many calls as fit in ``budget``."""
    samples: list[float] = []
    deadline = time.perf_counter() + budget
    while len(samples) < max_calls and (len(samples) < min_calls or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def rss(pid: int | str = "self") -> int:
    """VmRSS of process ``pid`` now, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise LookupError(f"no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        after_name = f.read().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, kw_only=True)
class Group:
    """A table of its own: ``run(mode)`` gives its rows, raw results and
    failures; with ``measures``, each item runs in a child interpreter
    (``python -m <module> --measure ITEM``) and ``rows_for(item, figures)``."""

    module: str  # "benchmarks.soak": ``python -m`` runs it, and its children
    title: str  # the report's first line, before " (<mode> mode, <n> s)"
    head: tuple[str, ...]  # the column titles
    notes: Callable[[str], str]  # the notes under the table, for a mode
    missed: str  # "Soak targets missed": the last line, before the ids
    smoke: str = SMOKE_FIGURES  # the line printed in smoke mode, under the notes
    run: Callable[[str], Outcome] | None = None
    sizes: Mapping[str, Sizes] = field(default_factory=dict)  # per mode, what the measures get
    measures: Mapping[str, Callable[[Sizes], Results]] = field(default_factory=dict)
    rows_for: Callable[[str, Results], list[Row]] | None = None
    item_prefix: str = ""  # how logs and failures name an item ("#" + "6"); --only accepts both
    child_timeout: Mapping[str, float] = field(default_factory=lambda: {"full": 300.0, "smoke": 60.0})
    child_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.head[0]

    def log(self, msg: str) -> None:
        logger(self.label)(msg)

    def report(self, mode: str, rows: Sequence[Row], seconds: float) -> str:
        """Title, table, notes, smoke-mode line, targets missed."""
        missed = [r.id for r in rows if r.met == "no"]
        title = f"{self.title} ({mode} mode, {seconds:.0f} s)"
        parts = [title, "", render(rows, self.head), "", self.notes(mode)]
        parts += [self.smoke] if mode == "smoke" else []
        return "\n".join([*parts, f"{self.missed}: {', '.join(missed) if missed else 'none'}"])

    def measure_in_child(self, item: str, mode: str, env: Mapping[str, str] = {}) -> Results:
        """One item in a fresh interpreter; its figures come back as JSON (its stdout's last line)."""
        cmd = [sys.executable, "-m", self.module, "--measure", item, f"--{mode}"]
        child_env = {**os.environ, **self.child_env, **env}
        timeout = self.child_timeout[mode]
        proc = subprocess.run(
            cmd, cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"item {item}: exit {proc.returncode}\n{proc.stderr[-4000:]}")
        result: Results = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def run_items(
        self, mode: str, items: Sequence[str] | None = None, measure: Measure | None = None, **env: str
    ) -> Outcome:
        """Every item, each in a child process (or by ``measure(item)``): rows, raw results, failures."""
        assert self.rows_for is not None
        rows: list[Row] = []
        results: Results = {}
        failures: list[str] = []
        for item in items or self.measures:

            def one(item: str = item) -> list[Row]:
                results[item] = measure(item) if measure else self.measure_in_child(item, mode, env)
                return self.rows_for(item, results[item])  # type: ignore[misc]

            rows += attempt(self.log, f"{self.label} {self.item_prefix}{item}", one, failures) or []
        return rows, results, failures

    def run_all(self, mode: str, items: Sequence[str] | None = None) -> Outcome:
        return self.run(mode) if self.run is not None else self.run_items(mode, items)

    def main(self, argv: list[str] | None = None) -> int:
        """``python -m <module> [--full|--smoke] [--json out.json] [--only ITEMS]``: print the
        report; exit 1 when something failed to run (met or not)."""
        parser = argparse.ArgumentParser(prog=f"python -m {self.module}", description=self.title)
        add_mode_args(parser)
        if self.measures:
            items = ",".join(self.measures)
            parser.add_argument("--only", default=items, help=f"comma-separated subset of {items}")
            parser.add_argument("--measure", choices=list(self.measures), help=argparse.SUPPRESS)
        args = parser.parse_args(argv)
        mode = args.mode or "full"
        if getattr(args, "measure", None):
            print(json.dumps(self.measures[args.measure](self.sizes[mode])))
            return 0
        picked = None
        if self.measures:
            picked = [i.strip().lstrip(self.item_prefix) for i in args.only.split(",") if i.strip()]
            if set(picked) - set(self.measures):
                parser.error(f"unknown items: {sorted(set(picked) - set(self.measures))}")
        started = time.monotonic()
        rows, results, failures = self.run_all(mode, picked)
        print(self.report(mode, rows, time.monotonic() - started))
        rows_json = [r.as_json(len(self.head) == 6) for r in rows]
        output = {"mode": mode, "rows": rows_json, "results": results, "failures": failures}
        return finish(args.json, output, failures)


def attempt(log: Callable[[str], None], what: str, fn: Callable[[], Any], failures: list[str]) -> Any:
    """``fn()``, its seconds logged; when it raises: None, and ``what`` with the traceback in ``failures``."""
    started = time.monotonic()
    try:
        out = fn()
    except Exception:
        failures.append(f"{what}:\n{traceback.format_exc()}")
        log(f"{what} FAILED")
        return None
    log(f"{what}: {time.monotonic() - started:.1f} s")
    return out


def add_mode_args(parser: argparse.ArgumentParser) -> None:
    size = parser.add_mutually_exclusive_group()
    for mode, what in (("full", "the stable sizes (default)"), ("smoke", "tiny sizes: does it run?")):
        size.add_argument(f"--{mode}", action="store_const", dest="mode", const=mode, help=what)
    parser.add_argument("--json", type=Path, help="also write rows and raw results here")


def finish(json_path: Path | None, output: dict[str, Any], failures: list[str]) -> int:
    """``output`` written to ``json_path`` (when given), a ``FAILED`` line on
    stderr per failure; exit status 1 when something failed to run, else 0."""
    if json_path:
        json_path.write_text(json.dumps(output, indent=1))
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    return 1 if failures else 0
