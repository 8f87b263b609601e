"""The harness's protocol client and servers, plus what the benchmark groups
share on top of them: a session that logs the visible texts at the end of
every completed run with its finish time (``time.monotonic()``, taken when
``script_finished`` was handled), servers started and stopped together,
sessions connected and closed together, and one timed write."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The harness lives in tests/ (not a package): imported as ``harness``, the
# name the test suite uses, so both share one module when run together.
TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import start_all  # noqa: E402
from harness.client import StreamlitSession  # noqa: E402
from harness.server import StreamlitServer  # noqa: E402

__all__ = ["TESTS", "BenchSession", "StreamlitServer", "start_all"]

APPS = Path(__file__).resolve().parent / "apps"
COUNTER_APP = APPS / "counter_app.py"
# Every server: no Streamlit "magic" (a bare expression statement becomes an st.write).
BASE_OPTIONS = {"runner.magicEnabled": "false"}
SESSION_TIMEOUT = 300.0  # seconds, per wait; fan-out with postScriptGC on is slow
QUIET = 0.15  # seconds of silence that mean "every rerun has happened"
ERROR_MARKS = ("Traceback", "ServerStateError")
LOOP_WARNINGS = ("stopped rerunning", "stopped a rerun loop")


class BenchSession(StreamlitSession):
    """A session that logs ``(finished_at, texts)`` for each completed run,
    so a wait can ask "which run first showed X, and when did it finish"
    even if later runs have replaced the page since."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", SESSION_TIMEOUT)
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


@contextlib.contextmanager
def servers(app: Path, env: dict[str, dict[str, str]], options: dict[str, str]) -> Iterator[dict[str, Any]]:
    """One server of ``app`` per name of ``env`` (its environment), started
    concurrently, stopped (by PID) at exit."""
    made = {
        name: StreamlitServer(app, options={**BASE_OPTIONS, **options}, env=e, cwd=app.parent, keep_log=False)
        for name, e in env.items()
    }
    try:
        start_all(list(made.values()))
        yield made
    finally:
        for server in made.values():
            server.stop()


async def connect_all(sessions: list[BenchSession], timeout: float = SESSION_TIMEOUT * 2) -> None:
    """Connect concurrently; on failure close what connected and re-raise."""
    results = await asyncio.wait_for(
        asyncio.gather(*(s.connect() for s in sessions), return_exceptions=True), timeout
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await close_all(sessions)
        raise errors[0]


async def close_all(sessions: list[BenchSession]) -> None:
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


async def quiet_all(sessions: list[BenchSession], quiet: float = QUIET) -> None:
    await asyncio.gather(*(s.wait_quiet(quiet, timeout=SESSION_TIMEOUT) for s in sessions))


async def init_key(server: StreamlitServer, key: str) -> None:
    """Create ``key`` from a throwaway session before the measured sessions
    connect. Upstream reruns the session that creates the key from inside
    that session's first run, with ``session._client_state``, which before
    the session's first run has ended is empty: the query string (and with it
    ``key=``) is lost for that session from then on. Sessions that connect
    once the key exists never write in their first run and keep theirs."""
    session = BenchSession(server, query_string=f"key={key}", name="init")
    await session.connect()
    await session.wait_quiet(QUIET, timeout=SESSION_TIMEOUT)
    await session.close()


_COUNT = re.compile(r"^count=(\d+)$")


def shown_count(session: BenchSession) -> int:
    for text in session.texts():
        m = _COUNT.match(text)
        if m:
            return int(m.group(1))
    raise LookupError(f"no count on the page:\n{session.describe()}")


async def one_write(writer: BenchSession, readers: list[BenchSession]) -> list[float]:
    """Click "Increment" in ``writer``; return, per reader, the seconds from
    sending the click to the end (``script_finished``) of that reader's first
    run that showed the new value. Returns once every session is quiet."""
    expected = f"count={shown_count(writer) + 1}"
    everyone = [*readers, writer]
    marks = [len(s.finished_log) for s in everyone]
    t0 = time.monotonic()
    await writer.click("Increment", wait=False)
    await asyncio.gather(
        *(
            s.wait_until(
                lambda s=s, m=m: s.first_finish_showing(expected, m) is not None,
                SESSION_TIMEOUT,
                what=f"a run of {s.name} showing {expected}",
            )
            for s, m in zip(everyone, marks, strict=True)
        )
    )
    finished = [r.first_finish_showing(expected, m) for r, m in zip(readers, marks[:-1], strict=True)]
    latencies = [f - t0 for f in finished]  # type: ignore[operator]  # none is None: waited for above
    await quiet_all(everyone)
    return latencies


async def alternate_writes(
    pairs: dict[str, tuple[BenchSession, list[BenchSession]]], warmup: int, writes: int, reduce: Any = None
) -> dict[str, list[float]]:
    """``warmup + writes`` writes in each pair (writer, readers), the pairs
    alternating write by write (so noise hits all alike); per pair, the
    latency of each measured write (``reduce`` of the readers', default the only one)."""
    lat: dict[str, list[float]] = {name: [] for name in pairs}
    for i in range(warmup + writes):
        for name in list(pairs) if i % 2 == 0 else list(pairs)[::-1]:
            writer, readers = pairs[name]
            t = await one_write(writer, readers)
            if i >= warmup:
                lat[name].append(reduce(t) if reduce else t[0])
    return lat


def namespace(item: str) -> str:
    return f"bench-{item}-{uuid.uuid4().hex[:8]}"


def redis_server() -> Any:
    """The tests' ``RedisServer`` (127.0.0.1, a free port, no persistence, stopped by its PID)."""
    from redis_support import RedisServer

    return RedisServer()


def redis_state(url: str, ns: str) -> tuple[Any, Any]:
    """A ``ServerState`` on a new store over Redis, and that store (to close it)."""
    from server_state import ServerState
    from server_state._store import store_from_url

    store = store_from_url(url, namespace=ns)
    return ServerState(store), store


def log_lines(text: str, marks: tuple[str, ...]) -> list[str]:
    return [line for line in text.splitlines() if any(m in line for m in marks)]
