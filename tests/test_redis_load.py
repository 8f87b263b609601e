"""The Redis load test (benchmarks/load_chat.py) in its short form: 3
``streamlit run`` replicas x 3 sessions sharing one chat in Redis, "Post"
clicked at 10 messages/s for 10 s, session after session over all replicas.

Asserted as a user of the chat would see it: every session ends showing the
same full history (count and digest of every message id in order), the one a
replica started afterwards reads; every post the app saw commit is in it, and
no message more often than the app posted it (the app logs each post before
and after its ``update``); no server log has a traceback or a
ServerStateError, and none reports a stopped rerun loop.
The figures (CPU per replica, Redis memory, bytes per message) are printed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from redis_support import RedisServer

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def test_three_replicas_posting_to_one_chat_end_with_the_same_full_history(redis_server: RedisServer) -> None:
    from benchmarks import load_chat

    redis_server.flushall()
    result = asyncio.run(load_chat.run_load(load_chat.SETTINGS["smoke"], redis_server.url))
    print(load_chat.report("smoke", result))
    assert result["converged"], result  # every session ended showing the whole history
    assert result["same_history"], result  # the same in every session and in a new replica
    assert not result["lost"], result  # every update the app saw return is in it
    assert not result["doubled"], result  # and no more often than the app asked for it
    assert result["count"] > 0.9 * result["clicks"], result  # the clicks became posts
    assert not result["log_errors"], result["log_errors"]
    assert not result["loop_warnings"], result["loop_warnings"]
    assert not result["page_errors"], result["page_errors"]
