"""The harness's protocol client, plus what the benchmarks need on top of it:
the visible texts at the end of every completed run, with its finish time
(``time.monotonic()``, taken when ``script_finished`` was handled)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# The harness lives in tests/ (not a package): imported as ``harness``, the
# name the test suite uses, so both share one module when run together.
TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness.client import StreamlitSession  # noqa: E402
from harness.server import StreamlitServer  # noqa: E402

__all__ = ["BenchSession", "StreamlitServer"]


class BenchSession(StreamlitSession):
    """A session that logs ``(finished_at, texts)`` for each completed run,
    so a wait can ask "which run first showed X, and when did it finish"
    even if later runs have replaced the page since."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished_log: list[tuple[float, tuple[str, ...]]] = []

    def _on_script_finished(self, msg: Any) -> None:
        super()._on_script_finished(msg)
        run = self.current_run
        if run is not None and run.completed and run.finished_at is not None:
            self.finished_log.append((run.finished_at, tuple(self.texts())))

    def first_finish_showing(self, text: str, after: int = 0) -> float | None:
        """Finish time of the first completed run (from log index ``after``)
        whose page showed exactly ``text``; None if none yet."""
        for finished_at, texts in self.finished_log[after:]:
            if text in texts:
                return finished_at
        return None

    def runs_showing(self, prefix: str, after: int = 0) -> list[str]:
        """Texts starting with ``prefix`` at the end of each completed run."""
        return [t for _, texts in self.finished_log[after:] for t in texts if t.startswith(prefix)]
