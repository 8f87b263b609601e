"""Print pip constraints for testing against one Streamlit release.

Usage: python scripts/streamlit-constraints.py 1.50.*

The test suite runs with ``filterwarnings = error``. Some older Streamlit
releases call third-party APIs that newer third-party releases deprecate;
the warning then fails the test, though nothing is wrong with server_state.
Those third-party packages are pinned here, for the old-release venvs only
(the latest release's venv, ``.venv``, takes everything as it comes):

- altair 5.5 deprecates what Streamlit <= 1.47 calls (``vega_charts.py``).
- pandas 3.1 deprecates ``reset_index(inplace=True)``, which Streamlit
  1.56-1.66 calls (``built_in_chart_utils.py``).
"""

from __future__ import annotations

import re
import sys


def constraints(spec: str) -> list[str]:
    match = re.match(r"\D*(\d+)\.(\d+)", spec)
    if match is None:
        raise SystemExit(f"not a Streamlit release: {spec!r} (e.g. 1.50.* or 1.50.2)")
    minor = (int(match[1]), int(match[2]))
    pins = []
    if minor <= (1, 47):
        pins.append("altair<5.5")
    if (1, 56) <= minor <= (1, 66):
        pins.append("pandas<3.1")
    return pins


if __name__ == "__main__":
    print("\n".join(constraints(sys.argv[1] if len(sys.argv) > 1 else "")))
