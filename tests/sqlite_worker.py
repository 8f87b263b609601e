"""A process writing to a SQLite-backed state until it is told to stop, or
killed, for ``tests/test_sqlite_crash.py``.

Run as ``python tests/sqlite_worker.py URL REPORT SEED``. It opens the state
at ``URL`` and writes ``ready`` on stdout; then, in its main thread and until
a line ``stop`` (or the end of stdin) arrives:

- two operations of every three an increment ``update("c", lambda v: v + 1,
  default=0)``; once the call returned, the line ``i VALUE`` (the value it
  returned) is appended to the file ``REPORT``;
- the third a transfer of a random amount between ``"a"`` and ``"b"`` in one
  ``transact`` (their sum stays ``TOTAL``);
- after every operation, a ``snapshot("a", "b")`` of this process's mirror:
  ``v A B SEQ`` is appended when ``a + b`` is not ``TOTAL``.

An exception appends ``e`` and its text (and the worker goes on). Each line
is one ``write`` to a file opened with ``O_APPEND``: when the process is
killed, a line is in the file whole or not at all.

On ``stop`` it finishes the operation under way and says ``stopped``; on
``final`` (every worker stopped) it catches up with the file and answers with
one JSON line on stdout: its mirror's values and versions of ``a``, ``b``,
``c``. Logs go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import threading
import traceback

from server_state import ServerState
from server_state._store import store_from_url

TOTAL = 1000  # a + b, always
KEYS = ("a", "b", "c")
LOG_KEPT = 10**9  # the test reads every commit back from the log: never trimmed


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    url, report_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fd = os.open(report_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def report(line: str) -> None:
        os.write(fd, (line + "\n").encode())

    store = store_from_url(url, log_kept=LOG_KEPT)
    state = ServerState(store)
    store.committer.open()
    stop, final = threading.Event(), threading.Event()

    def listen() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                stop.set()
            elif line.strip() == "final":
                break
        stop.set()
        final.set()

    threading.Thread(target=listen, name="stdin", daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()

    rng = random.Random(seed)
    op = 0
    while not stop.is_set():
        op += 1
        try:
            if op % 3:
                value = state.update("c", lambda v: v + 1, default=0)
                report(f"i {value}")
            else:
                amount = rng.randint(1, 9) * rng.choice((1, -1))
                state.transact(lambda s, d=amount: s.set("a", s["a"] - d).set("b", s["b"] + d))
            snap = state.snapshot("a", "b")
            if snap["a"] + snap["b"] != TOTAL:
                report(f"v {snap['a']} {snap['b']} {snap.seq}")
        except Exception:
            report("e " + traceback.format_exc().replace("\n", " | "))

    sys.stdout.write("stopped\n")
    sys.stdout.flush()
    final.wait()
    store.committer.catch_up()
    mirror = {
        "pid": os.getpid(),
        "values": {k: state.get(k) for k in KEYS},
        "versions": {k: state.version(k) for k in KEYS},
    }
    sys.stdout.write(json.dumps(mirror) + "\n")
    sys.stdout.flush()
    store.close()
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
