"""Run at interpreter start by ``server_state-boot.pth``; does nothing unless
this process is ``streamlit run``.

A tab whose server restarted reconnects to a server that has run no script
yet, so nothing has imported ``server_state`` to notice the tab: it would
show what it showed before and follow nothing until a click. In a
``streamlit run`` process this imports ``server_state`` (no connection, no
work: see its docstring) and hooks Streamlit's session connections, so such a
tab is run once (``server_state._streamlit.hook_reconnects``).

Never raises: an interpreter must start whatever happens here, and the app's
own ``import server_state`` reports any problem where it belongs.
``SERVER_STATE_RUN_RECONNECTED=0`` turns it off.
"""

from __future__ import annotations

import os
import sys


def _is_streamlit_run(argv: list[str]) -> bool:
    """``streamlit run ...``, ``python -m streamlit run ...`` or ``python
    .../bin/streamlit run ...`` (``sys.orig_argv``: the interpreter first)."""
    for i, arg in enumerate(argv[:-1]):
        if argv[i + 1] != "run":
            continue
        if i > 0 and argv[i - 1] == "-m":
            if arg == "streamlit":
                return True
        elif i <= 1 and os.path.basename(arg) in ("streamlit", "streamlit.exe", "streamlit-script.py"):
            return True
    return False


def boot() -> None:
    if os.environ.get("SERVER_STATE_RUN_RECONNECTED", "1") == "0":
        return
    if not _is_streamlit_run(list(getattr(sys, "orig_argv", sys.argv))):
        return
    try:
        from server_state import _streamlit

        _streamlit.hook_reconnects()
    except Exception:  # see the module docstring: never break the start
        pass


boot()
