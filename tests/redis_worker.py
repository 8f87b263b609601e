"""A replica of a Redis-backed state in a process of its own, for
``tests/test_redis_faults.py``.

Run as ``python tests/redis_worker.py``. It reads one JSON command per line on
stdin and answers each with one JSON line on stdout (nothing else is ever
written there; logs go to stderr). The test process drives it, and can stop it
with SIGSTOP between two commands: a replica whose every thread (follower and
lease renewer too) is frozen, as a stalled process is.

Commands (``{"cmd": name, ...}``), each answered once:

- ``open`` ``url``, ``namespace``, ``lease_ttl``, ``block_ms``: make the
  replica and start it (connect, load the state, start the follower).
- ``churn`` ``threads``, ``ops``, ``seed``: ``threads`` threads, released
  together by a barrier, each doing ``ops`` operations: two of every three an
  increment ``update("c", lambda v: v + 1, default=0)``, the third a transfer
  between ``"a"`` and ``"b"`` in one ``transact``; after every operation, and
  all along in one more thread, a ``snapshot("a", "b")`` of this replica's
  mirror whose ``a + b`` must be 1000. Answers with the values every
  increment returned, the counts, the invariant violations and the errors.
- ``converge`` ``seq``, ``timeout``, ``keys``: wait until the mirror has every
  commit up to Redis sequence ``seq``; answer with the mirror's values, local
  versions and Redis versions of ``keys``.
- ``lock`` ``key``: take ``server_state_lock[key]`` in the main thread (kept
  across commands) and answer with the value read under it.
- ``write`` ``key``, ``value``: ``state[key] = value`` in the main thread (under
  the lock, if it holds it); answers ``ok`` or the error.
- ``release`` ``key``: leave the lock taken by ``lock``.
- ``locked_incr`` ``key``: ``with server_state_lock[key]: state[key] += 1``.
- ``exit``: close the replica and exit.

An unexpected exception in a command is answered as ``{"crash": traceback}``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import threading
import time
import traceback
from typing import Any

from server_state import ServerState, ServerStateError, ServerStateLock, _check_key
from server_state._store import Store, store_from_url
from server_state.backends.redis._committer import NET_ERRORS

TOTAL = 1000  # a + b, always
_MAX_REPORTED = 20  # violations / errors listed per kind (all are counted)


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "error": type(exc).__name__,
        "message": str(exc),
        "key": getattr(exc, "key", None),
        "server_state_error": isinstance(exc, ServerStateError),
        "mro": [cls.__name__ for cls in type(exc).__mro__],
    }


class CountingScript:
    """The commit script, counting the calls that died on a cut connection
    and the ones that retried a transaction id after that (the replay path)."""

    def __init__(self, script: Any) -> None:
        self._script = script
        self._lock = threading.Lock()
        self._failed: set[str] = set()
        self.calls = 0
        self.net_errors = 0
        self.retried = 0

    def __call__(self, keys: list[str], args: list[Any], client: Any = None) -> Any:
        tx = keys[4]
        with self._lock:
            self.calls += 1
            if tx in self._failed:
                self.retried += 1
        try:
            return self._script(keys=keys, args=args, client=client)
        except NET_ERRORS:
            with self._lock:
                self.net_errors += 1
                self._failed.add(tx)
            raise


class Worker:
    def __init__(self) -> None:
        self.state: ServerState | None = None
        self.store: Store | None = None
        self.lock: ServerStateLock | None = None
        self.held: dict[str, Any] = {}
        self.commits = CountingScript(None)

    # -- commands --------------------------------------------------------------

    def open(
        self, url: str, namespace: str | None = None, lease_ttl: float | None = None, block_ms: int = 200
    ) -> dict[str, Any]:
        self.store = store_from_url(url, namespace=namespace, lease_ttl=lease_ttl, block_ms=block_ms)
        self.state = ServerState(self.store)
        self.lock = ServerStateLock(self.state._locks, _check_key)
        self.store.committer.commit_script = self.commits = CountingScript(self.store.committer.commit_script)
        self.store.committer.open()
        return {"ok": True, "pid": os.getpid(), "rseq": self.store.position()}

    def churn(self, threads: int, ops: int, seed: int = 0) -> dict[str, Any]:
        state = self.state
        assert state is not None
        barrier = threading.Barrier(threads + 1)
        done = threading.Event()
        lock = threading.Lock()
        report: dict[str, Any] = {
            "returned": [],  # every value an increment returned
            "incs": 0,
            "transfers": 0,
            "snapshots": 0,
            "violations": 0,
            "violation_samples": [],
            "errors": 0,
            "error_samples": [],
            "failed_incs": 0,  # increments that raised: applied or not, nobody knows
            "slowest_op": 0.0,  # seconds
        }

        def check(snapshot_count: list[int]) -> None:
            snap = state.snapshot("a", "b")
            snapshot_count[0] += 1
            a, b = snap["a"], snap["b"]
            if a + b != TOTAL:
                with lock:
                    report["violations"] += 1
                    if len(report["violation_samples"]) < _MAX_REPORTED:
                        report["violation_samples"].append({"a": a, "b": b, "seq": snap.seq})

        def failed(exc: BaseException, what: str) -> None:
            with lock:
                report["errors"] += 1
                if len(report["error_samples"]) < _MAX_REPORTED:
                    report["error_samples"].append({"op": what, **_error(exc), "tb": traceback.format_exc()})

        def run(index: int) -> None:
            rng = random.Random(seed * 1000 + index)
            returned: list[int] = []
            transfers = 0
            failed_incs = 0
            snapshots = [0]
            barrier.wait()
            slowest = 0.0
            for op in range(ops):
                began = time.monotonic()
                if op % 3 == 2:
                    amount = rng.randint(1, 9) * rng.choice((1, -1))
                    try:
                        state.transact(lambda s, d=amount: s.set("a", s["a"] - d).set("b", s["b"] + d))
                        transfers += 1
                    except Exception as exc:
                        failed(exc, "transfer")
                else:
                    try:
                        returned.append(state.update("c", lambda v: v + 1, default=0))
                    except Exception as exc:
                        failed_incs += 1
                        failed(exc, "increment")
                slowest = max(slowest, time.monotonic() - began)
                try:
                    check(snapshots)
                except Exception as exc:
                    failed(exc, "snapshot")
            with lock:
                report["slowest_op"] = round(max(report["slowest_op"], slowest), 3)
                report["returned"] += returned
                report["incs"] += len(returned)
                report["transfers"] += transfers
                report["failed_incs"] += failed_incs
                report["snapshots"] += snapshots[0]

        def watch() -> None:
            snapshots = [0]
            barrier.wait()
            while not done.is_set():
                try:
                    check(snapshots)
                except Exception as exc:
                    failed(exc, "snapshot")
                    break
            with lock:
                report["snapshots"] += snapshots[0]

        workers = [threading.Thread(target=run, args=(i,), name=f"churn-{i}") for i in range(threads)]
        watcher = threading.Thread(target=watch, name="churn-watch")
        for thread in [*workers, watcher]:
            thread.start()
        started = time.monotonic()
        for thread in workers:
            thread.join()
        done.set()
        watcher.join()
        report["seconds"] = round(time.monotonic() - started, 3)
        report["commit_calls"] = self.commits.calls
        report["commit_net_errors"] = self.commits.net_errors
        report["commit_retries"] = self.commits.retried
        return report

    def converge(self, seq: int, timeout: float = 15.0, keys: list[str] | None = None) -> dict[str, Any]:
        store, state = self.store, self.state
        assert store is not None and state is not None
        deadline = time.monotonic() + timeout
        while store.position() < seq and time.monotonic() < deadline:
            time.sleep(0.002)  # polling the mirror's progress, with a deadline
        keys = keys or []
        return {
            "rseq": store.position(),
            "reached": store.position() >= seq,
            "values": {k: state.get(k) for k in keys},
            "versions": {k: state.version(k) for k in keys},
            "rver": {k: store.committer.rver.get(k) for k in keys},
            "resyncs": store.committer.resyncs,
        }

    def lock_(self, key: str) -> dict[str, Any]:
        assert self.lock is not None and self.state is not None
        lock = self.lock[key]
        lock.acquire()
        self.held[key] = lock
        return {"ok": True, "value": self.state.get(key)}

    def write(self, key: str, value: Any) -> dict[str, Any]:
        assert self.state is not None
        try:
            self.state[key] = value
        except Exception as exc:
            return _error(exc)
        return {"ok": True}

    def release(self, key: str) -> dict[str, Any]:
        try:
            self.held.pop(key).release()
        except Exception as exc:
            return _error(exc)
        return {"ok": True}

    def locked_incr(self, key: str) -> dict[str, Any]:
        assert self.lock is not None and self.state is not None
        try:
            with self.lock[key]:
                self.state[key] = value = self.state[key] + 1
        except Exception as exc:
            return _error(exc)
        return {"ok": True, "value": value}

    def exit(self) -> dict[str, Any]:
        if self.store is not None:
            self.store.close()
        return {"ok": True}


def main() -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(threadName)s %(levelname)s %(name)s: %(message)s",
    )
    worker = Worker()
    commands = {
        "open": worker.open,
        "churn": worker.churn,
        "converge": worker.converge,
        "lock": worker.lock_,
        "write": worker.write,
        "release": worker.release,
        "locked_incr": worker.locked_incr,
        "exit": worker.exit,
    }
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        name = request.pop("cmd")
        try:
            reply = commands[name](**request)
        except BaseException:
            reply = {"crash": traceback.format_exc()}
        out.write(json.dumps(reply) + "\n")
        out.flush()
        if name == "exit":
            return 0
    if worker.store is not None:
        worker.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
