"""Shared widgets: an edit of a text box bound with ``server_state.widget``
in one tab, until the other tab has finished a run showing it (p50), on one
``streamlit run`` server with the memory backend. Its base: a click of a
button writing another key in the run (``update``), until the other tab
shows it, the same two sessions, measured before the edits. Edits are paced past the
1 s in which a pushed rerun to a tab whose last run gave a widget a value is
held 0.15 s (docs/reruns.md, rule 3); edits made at once are an info row.

    python -m benchmarks.widget_bench [--full|--smoke]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from server_state._scheduler import RENDER_HOLD, RENDER_HOLD_WINDOW

from ._core import Group, Row, Target, by_mode, labelled, pct

SIZES = by_mode(edits=(40, 2), warmup=(3, 1))

LABELS = {
    "widget_edit_render": "shared-widget edit in one tab → the other tab shows it, p50 of {n}",
    "widget_edit_render_p95": "shared-widget edit in one tab → the other tab shows it, p95 of {n} (info)",
    "widget_edit_render_fast": "the same, tabs taking turns at once (within 1 s), p50 of {n} (info)",
}


async def _edit(writer: Any, reader: Any, value: str) -> float:
    """Commit ``value`` in ``writer``'s box; the seconds from sending it to
    the end of ``reader``'s first run showing it. Returns once both are quiet."""
    from ._client import SESSION_TIMEOUT, quiet_all

    expected = f"title={value}"
    marks = [len(s.finished_log) for s in (reader, writer)]
    t0 = time.monotonic()
    await writer.set_value("Title", value, wait=False)
    for s, m in zip((reader, writer), marks, strict=True):
        await s.wait_until(
            lambda s=s, m=m: s.first_finish_showing(expected, m) is not None,
            SESSION_TIMEOUT,
            what=f"a run of {s.name} showing {expected}",
        )
    finished = reader.first_finish_showing(expected, marks[0])
    await quiet_all([reader, writer])
    return float(finished - t0)


async def _measure(z: dict[str, Any]) -> dict[str, Any]:
    from ._client import APPS, BenchSession, close_all, connect_all, one_write, quiet_all, servers

    env = {"SERVER_STATE_URL": "memory://"}
    with servers(APPS / "widget_app.py", {"memory": env}, {}) as srv:
        a = BenchSession(srv["memory"], name="A")
        b = BenchSession(srv["memory"], name="B")
        edits: list[float] = []
        fast: list[float] = []
        clicks: list[float] = []
        try:
            await connect_all([a, b])
            await quiet_all([a, b])
            # Clicks first: a tab whose last run gave the box a new value waits 0.15 s before a
            # pushed rerun (docs/reruns.md, rule 3), which a click right after an edit would measure.
            for i in range(z["warmup"] + z["edits"]):
                writer, reader = (a, b) if i % 2 == 0 else (b, a)
                (click,) = await one_write(writer, [reader])
                if i >= z["warmup"]:
                    clicks.append(click)
            for i in range(z["warmup"] + z["edits"]):
                writer, reader = (a, b) if i % 2 == 0 else (b, a)
                edit = await _edit(writer, reader, f"fast{i}")
                if i >= z["warmup"]:
                    fast.append(edit)
            for i in range(z["warmup"] + z["edits"]):
                # A person's pace: past the window in which a pushed rerun is held (pacing, not a wait
                # for an event: the figure is the latency of an edit made then).
                await asyncio.sleep(RENDER_HOLD_WINDOW + 0.05)
                writer, reader = (a, b) if i % 2 == 0 else (b, a)
                edit = await _edit(writer, reader, f"v{i}")
                if i >= z["warmup"]:
                    edits.append(edit)
        finally:
            await close_all([a, b])
    return {
        name: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "samples": v, "n": len(v)}
        for name, v in (("edit", edits), ("fast", fast), ("click", clicks))
    }


def measure_widget(z: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_measure(z))


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    row = labelled(LABELS, n=r["edit"]["n"])
    base = {"base_note": "(a button click, same tabs)"}
    return [
        row("widget_edit_render", r["edit"]["p50"], "ms", Target(0.100), base=r["click"]["p50"], **base),
        row("widget_edit_render_p95", r["edit"]["p95"], "ms", base=r["click"]["p95"], **base),
        row(
            "widget_edit_render_fast",
            r["fast"]["p50"],
            "ms",
            note=f"(a {RENDER_HOLD * 1e3:.0f} ms render hold: docs/reruns.md, rule 3)",
            base=r["click"]["p50"],
            **base,
        ),
    ]


NOTES = """\
Shared-widget notes: two sessions of one `streamlit run` server (memory backend), {edits} edits of a text box bound
with server_state.widget and as many clicks of a button writing another key before them (the base), the tabs taking
turns; from sending the edit (click) to the script_finished of the other tab's first run showing it. Edits {hold} s
apart, as a person types; "at once": each edit as soon as both tabs are quiet, so within 1 s of the run in which the
other tab's box was given a value, and its pushed rerun is held {hold_ms} ms for its browser to draw that value.
"""

GROUP = Group(
    module="benchmarks.widget_bench",
    title="server_state shared-widget figures",
    head=("shared widgets", "ours", "base", "ratio", "target", "met"),
    notes=lambda mode: NOTES.format(
        **SIZES[mode], hold=RENDER_HOLD_WINDOW + 0.05, hold_ms=f"{RENDER_HOLD * 1e3:.0f}"
    ),
    missed="Shared-widget targets missed",
    sizes=SIZES,
    measures={"widget": measure_widget},
    rows_for=rows_for,
)

if __name__ == "__main__":
    sys.exit(GROUP.main())
