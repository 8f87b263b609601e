"""Test harness: a real ``streamlit run`` server, a headless websocket client
that speaks Streamlit's browser protocol, and a Playwright/Chromium launcher.

See ``tests/test_harness.py`` for usage. Tests use a real server rather than
``AppTest`` because AppTest replaces the Runtime with a mock: there are no
other sessions to rerun, no fragment-only runs, no concurrency (see
``docs/streamlit-internals.md`` for what the library relies on).
"""

from __future__ import annotations

from .client import (
    Node,
    PageInfo,
    RunRecord,
    SessionClosedError,
    StreamlitSession,
    WidgetInfo,
    run_sessions,
)
from .programs import program_path, require_program
from .releases import STREAMLIT_RELEASE, streamlit_since
from .server import LogWatch, ServerStartError, StreamlitServer, free_port, start_all

__all__ = [
    "LogWatch",
    "Node",
    "PageInfo",
    "STREAMLIT_RELEASE",
    "RunRecord",
    "ServerStartError",
    "SessionClosedError",
    "StreamlitServer",
    "StreamlitSession",
    "WidgetInfo",
    "free_port",
    "program_path",
    "require_program",
    "run_sessions",
    "start_all",
    "streamlit_since",
]
