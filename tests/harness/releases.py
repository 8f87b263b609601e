"""Which Streamlit release the tests run on, for the few tests that check a
behaviour of Streamlit itself that changed between releases (see
docs/streamlit-internals.md, "The test harness").

Feature detection is preferred (the client does it for the protocol); this is
for what only shows in a running app, e.g. an example that uses an argument
an old release lacks, or an old frontend's bug.

    from harness import streamlit_since

    @streamlit_since((1, 53), "examples/dashboard.py uses st.cache_resource(on_release=)")
    def test_dashboard(...): ...
"""

from __future__ import annotations

import importlib.metadata

import pytest


def _release() -> tuple[int, int]:
    major, minor = importlib.metadata.version("streamlit").split(".")[:2]
    return int(major), int(minor)


#: ``(major, minor)`` of the installed Streamlit, e.g. ``(1, 37)``.
STREAMLIT_RELEASE = _release()


def streamlit_since(release: tuple[int, int], why: str) -> pytest.MarkDecorator:
    """Skip the test on Streamlit releases older than ``release`` (``why``
    says what it needs from that release)."""
    return pytest.mark.skipif(
        release > STREAMLIT_RELEASE,
        reason=f"needs Streamlit {release[0]}.{release[1]}+ (installed: "
        f"{STREAMLIT_RELEASE[0]}.{STREAMLIT_RELEASE[1]}): {why}",
    )
