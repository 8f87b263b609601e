"""The command line: back a state up, load it back, move it between backends.

    python -m server_state dump redis://host:6379/0 > state.jsonl
    python -m server_state load redis://other:6379/0 < state.jsonl

``URL`` is a ``SERVER_STATE_URL``. ``memory://`` is refused: that state lives
in the app's process, and this is another process.

The dump is JSON Lines, UTF-8 (ASCII in practice: JSON escapes the rest).
Line 1 is the header::

    {"server_state_dump": 1, "source": "redis://:***@host:6379/0", "seq": 456,
     "keys": 123, "codec": "tagged", "time": "2025-01-31T12:00:00+00:00"}

``server_state_dump`` is the format's version (a reader refuses a newer one);
``source`` the URL dumped, without its password; ``seq`` the commit the dump
is the state at; ``keys`` how many key lines follow (a load refuses a file
with fewer or more: a cut file is not half loaded); ``codec`` how values are
encoded. Then one line per key, in first-set order::

    {"key": "df", "version": 17, "type": "DataFrame", "repr": "   a  b\\n0  1  x...",
     "value": "TSDDk..."}

``value`` is the base64 of the value in the tagged codec
(``server_state/backends/_codec.py``, the one the Redis backend uses): types
come back exactly (numpy scalars, tz-aware datetimes, Decimal, enum members,
DataFrames...). ``version`` is the key's version where it was dumped, and
``type`` and ``repr`` (at most ~80 characters) are for people and ``grep``:
a load reads only ``key`` and ``value``, and the keys it writes get new
versions there.

A load reads and decodes the whole file before it writes anything, then
writes every key in one commit (``transact``): all or nothing. It refuses a
state that has keys unless given ``--replace``, which makes the state exactly
the dump's keys (the others deleted, in the same commit).

An enum member is decoded only if its module is imported (data never names a
module to import): ``--import MODULE`` imports it first. The Redis settings a
replica takes from the environment apply here too: ``SERVER_STATE_NAMESPACE``
(or ``--namespace``), ``SERVER_STATE_SERIALIZER`` and
``SERVER_STATE_SIGNING_KEY`` (a state of pickles is read with them; the dump
itself is always in the tagged codec, so a value only pickle can carry is
refused, naming its key).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import datetime
import importlib
import json
import logging
import os
import re
import reprlib
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pyrsistent import PMap

from ._errors import ServerStateError
from ._store import Store, store_from_url
from .backends._codec import make_codec
from .backends._seam import redact

__all__ = ["FORMAT", "main"]

FORMAT = 1  # the dump format this version writes and reads (the header's server_state_dump)
CODEC = "tagged"

_REPR = reprlib.Repr()  # (keyword arguments only from 3.12)
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 40
_ENV_OPTIONS = (
    ("SERVER_STATE_SERIALIZER", "serializer"),
    ("SERVER_STATE_SIGNING_KEY", "signing_key"),
)
_NOT_IMPORTED = re.compile(r"enum ([\w.]+), and module '([^']+)' is not imported")


class CliError(Exception):
    """An expected failure: its message is the one line printed."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    try:
        for module in args.imports:
            _import(module)
        summary = _dump(args) if args.command == "dump" else _load(args)
    except (CliError, ServerStateError) as exc:
        print(f"server_state {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"server_state {args.command}: interrupted", file=sys.stderr)
        return 130
    print(f"server_state {args.command}: {summary}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server_state",
        description="Back up a server_state, load it back, or move it to another backend: "
        "dump URL > state.jsonl, then load OTHER_URL < state.jsonl.",
        epilog="URL is a SERVER_STATE_URL (redis://host:6379/0, rediss://..., unix:///path/redis.sock). "
        "The format, and how to move a state: docs/backup.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{dump,load}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("url", metavar="URL", help="the state's SERVER_STATE_URL (not memory://)")
    common.add_argument(
        "--namespace",
        default=os.environ.get("SERVER_STATE_NAMESPACE") or None,
        help="the Redis namespace (default: $SERVER_STATE_NAMESPACE, else server_state)",
    )
    common.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first: the state holds members of an enum it defines (repeatable)",
    )
    dump = commands.add_parser(
        "dump",
        parents=[common],
        help="write the state as JSON Lines (stdout, or -o FILE)",
        description="Write the state at one commit as JSON Lines: a header line, then one line "
        "per key in first-set order. A summary goes to stderr.",
    )
    dump.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (replaced only once the dump is complete)"
    )
    load = commands.add_parser(
        "load",
        parents=[common],
        help="write a dump into the state, in one commit (stdin, or -i FILE)",
        description="Read a dump, decode every value, then write them all in one commit. "
        "Refuses a state that has keys, unless --replace.",
    )
    load.add_argument("-i", "--input", metavar="FILE", help="read FILE instead of stdin")
    load.add_argument(
        "--replace",
        action="store_true",
        help="load into a state that has keys: it becomes exactly the dump's keys (the others are deleted)",
    )
    return parser


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or whatever the module raised
        raise CliError(f"--import {module}: {type(exc).__name__}: {exc}") from None


# -- the store ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _opened(args: argparse.Namespace, nothing: str) -> Iterator[Store]:
    """The store ``args.url`` names, read in full; closed after. A value
    that cannot be read there is an error here, not a key left out."""
    url = args.url
    if not url or url.startswith("memory://"):
        raise CliError(
            f"{url or 'an empty URL'}: a memory:// state lives in the app's own process, which this "
            "command cannot reach. Dump and load a backend that lives outside it (redis://..., "
            "rediss://..., unix://...)."
        )
    options: dict[str, Any] = {
        option: os.environ[name] for name, option in _ENV_OPTIONS if os.environ.get(name)
    }
    if args.namespace:
        options["namespace"] = args.namespace
    try:
        store = store_from_url(url, **options)
    except TypeError as exc:  # a backend without one of the options
        raise CliError(f"{redact(url)}: {exc}") from None
    unreadable = _Unreadable()
    logger = logging.getLogger("server_state")
    logger.addHandler(unreadable)
    try:
        store.state  # noqa: B018  (connects and reads the whole state)
        unreadable.check(url, nothing)
        yield store
    finally:
        logger.removeHandler(unreadable)
        store.close()


class _Unreadable(logging.Handler):
    """The errors a backend logs while reading the state (a value it cannot
    decode is left out of its mirror, and logged)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        key = getattr(exc, "key", None)
        if isinstance(exc, ServerStateError) and key is not None:
            self.messages.append(f"the value of {key!r} there cannot be read: {_reason(exc)}")
        else:
            self.messages.append(record.getMessage() + (f": {exc}" if exc is not None else ""))

    def check(self, url: str, nothing: str) -> None:
        if self.messages:
            more = len(self.messages) - 1
            also = f" (and {more} more)" if more else ""
            raise CliError(f"{redact(url)}: {self.messages[0]}{also}; {nothing}.")


def _reason(exc: ServerStateError) -> str:
    """Why the codec refused a value, without its "server_state[key]: the
    value in Redis cannot be decoded" preamble; the option to pass when it
    is an enum whose module is not imported."""
    text = str(exc).rstrip(".")
    enum = _NOT_IMPORTED.search(text)
    if enum is not None:
        return (
            f"it holds a member of the enum {enum[1]}, whose module is not imported: pass --import {enum[2]}"
        )
    for preamble in (f"server_state[{getattr(exc, 'key', None)!r}]: ", "cannot be decoded: "):
        text = text.partition(preamble)[2] or text
    return text


# -- dump --------------------------------------------------------------------------------------


def _dump(args: argparse.Namespace) -> str:
    codec = make_codec(CODEC)
    source = redact(args.url)
    with _opened(args, "no dump was written") as store:
        # One instant: the values, their versions, their order and the commit,
        # under the lock every commit is applied under (a few ms for 100k keys).
        mirror = store.mirror
        with mirror.lock:
            entries = list(mirror.latest.items())
            seq = store.position()  # the backend's numbering (a Redis replica's mirror has its own)
        header = {
            "server_state_dump": FORMAT,
            "source": source,
            "seq": seq,
            "keys": len(entries),
            "codec": CODEC,
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        lines = [_json(header)]
        for key, (value, version) in entries:
            try:
                data = codec.encode(key, value)
            except ServerStateError as exc:
                raise CliError(f"key {key!r} cannot be dumped: {exc}") from None
            line = {"key": key, "version": version, "type": type(value).__name__}
            line["repr"] = _short_repr(value)
            line["value"] = base64.b64encode(data).decode("ascii")
            lines.append(_json(line))
    _write(lines, args.output)
    where = f" to {args.output}" if args.output else ""
    return f"dumped {len(entries)} keys at commit {seq} from {source}{where}"


def _short_repr(value: Any) -> str:
    try:
        return _REPR.repr(value)
    except Exception:  # a user's __repr__ that fails: the line is still written
        return f"<{type(value).__name__}>"


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(", ", ": ")) + "\n"


def _write(lines: list[str], output: str | None) -> None:
    if output is None:
        sys.stdout.writelines(lines)
        sys.stdout.flush()
        return
    target = Path(output)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(UnboundLocalError, OSError):
            os.unlink(tmp)
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None


# -- load --------------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> str:
    name = args.input or "stdin"
    try:
        if args.input is None:
            header, items = _read(sys.stdin, name)
        else:
            with open(args.input, encoding="utf-8") as f:
                header, items = _read(f, name)
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{name} is not a server_state dump: not UTF-8 text ({exc.reason})") from None
    replace = args.replace
    deleted: list[str] = []
    with _opened(args, "nothing was written") as store:

        def load(state: PMap[str, Any]) -> PMap[str, Any]:
            deleted.clear()
            present = list(state)  # the whole map read: any commit meanwhile conflicts
            if present and not replace:
                raise CliError(
                    f"{redact(args.url)} has {len(present)} keys already; nothing was written. Pass "
                    "--replace to make the state exactly the dump's keys (the others are deleted)."
                )
            for key in present:
                if key not in items:
                    deleted.append(key)
                    state = state.remove(key)
            for key, value in items.items():
                state = state.set(key, value)
            return state

        _, changes = store.transact(load)
        seq = store.position()  # (at least our commit, once transact returned)
    target = redact(args.url)
    unchanged = len(items) + len(deleted) - len(changes)
    detail = f"; {len(deleted)} other keys deleted, {unchanged} unchanged" if replace else ""
    origin = f"{name}, a dump of {header.get('source')} at commit {header.get('seq')}"
    return f"loaded {len(items)} keys at commit {seq} into {target} from {origin}{detail}"


def _read(lines: Iterable[str], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and every ``key: value`` of a dump, decoded; a
    ``CliError`` naming the line on anything wrong."""
    codec = make_codec(CODEC)
    header: dict[str, Any] | None = None
    items: dict[str, Any] = {}
    number = 0
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        where = f"{name} line {number}"
        try:
            obj = json.loads(text)
        except ValueError as exc:
            if header is None:
                raise CliError(f"{name} is not a server_state dump (line {number} is not JSON).") from None
            raise CliError(f"{where} is not JSON ({exc}); nothing was written.") from None
        if header is None:
            header = _header(obj, where, name)
            continue
        key, value = _item(obj, where, codec)
        if key in items:
            raise CliError(f"{where}: key {key!r} is in the dump twice; nothing was written.")
        items[key] = value
    if header is None:
        raise CliError(f"{name} is empty: no server_state dump there.")
    if len(items) != header["keys"]:
        raise CliError(
            f"{name}: the header (line 1) says {header['keys']} keys and {len(items)} follow (a cut "
            "file?); nothing was written."
        )
    return header, items


def _header(obj: Any, where: str, name: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or "server_state_dump" not in obj:
        raise CliError(f'{name} is not a server_state dump ({where} has no "server_state_dump" header).')
    version = obj["server_state_dump"]
    if type(version) is not int or version < 1:
        raise CliError(f"{where}: server_state_dump is {version!r}, not a format version.")
    if version > FORMAT:
        raise CliError(
            f"{where}: a dump of format {version}, newer than this server_state reads ({FORMAT}); "
            "load it with the server_state release that wrote it, or a newer one."
        )
    if obj.get("codec") != CODEC:
        raise CliError(f"{where}: values in codec {obj.get('codec')!r}; this version reads {CODEC!r}.")
    if type(obj.get("keys")) is not int:
        raise CliError(f"{where}: the header has no count of keys.")
    return obj


def _item(obj: Any, where: str, codec: Any) -> tuple[str, Any]:
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
        raise CliError(f'{where} is not a key line (no "key"); nothing was written.')
    key = obj["key"]
    try:
        data = base64.b64decode(obj["value"], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        reason = "no value" if isinstance(exc, KeyError) else f"not base64: {exc}"
        raise CliError(f"{where}, key {key!r}: {reason}; nothing was written.") from None
    try:
        value = codec.decode(key, data)
    except ServerStateError as exc:
        raise CliError(
            f"{where}, key {key!r}: cannot be decoded: {_reason(exc)}; nothing was written."
        ) from None
    return key, value
