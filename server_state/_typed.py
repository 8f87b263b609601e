"""Typed keys: ``count = server_state.key("count", int, default=0)``.

A registration (``KeySpec``) declares a key's type and, optionally, a
validator. The facade keeps one registry per state and checks every write of
a registered key against it before the commit: item and attribute
assignment, ``update`` (inside the store's retry, on ``fn``'s result),
``transact`` (on the keys the returned map writes), ``setdefault`` and the
handle's own ``set``/``update``. A rejected write commits nothing. Keys with
no registration cost one truthiness test (one dict lookup once any key is
registered).

The type check is made on the value the writer passes in, with the value
model in mind: values are read back in their read form (a list as a
``FrozenList``, still a ``list``; a set as a ``frozenset``; a pyrsistent
``pvector`` as a ``FrozenList``). So a value whose read form is an instance
of the declared type is accepted too (a ``set`` for ``frozenset``, a
``pvector`` for ``list``), and types that never come back from a read
(``set``, ``bytearray``, ``deque``, ``OrderedDict``, ``defaultdict``, the
pyrsistent types) are refused at registration, naming the type to declare.
``int`` is accepted where ``float`` is declared (and ``int``/``float`` for
``complex``), as type checkers do. Generics (``list[int]``) check their
origin (``list``) only.
"""

from __future__ import annotations

import collections
import threading
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pyrsistent import PDeque, PList, PMap, PSet, PVector

from ._base import MISSING
from ._errors import ServerStateError, ServerStateKeyError, ServerStateTypeError, ServerStateValidationError
from ._keys import normalise_key
from ._txmap import TxMap, TxRecord
from ._values import freeze, read_form, unchanged

if TYPE_CHECKING:
    from ._state import ServerState

__all__ = ["Key", "KeySpec", "check_transact", "check_update", "register"]

T = TypeVar("T")

_MISSING: Any = MISSING
_ABSENT = object()
_register_lock = threading.Lock()

# Types a read never returns: what to declare instead.
_NEVER_READ: dict[type, str] = {
    set: "frozenset (a set is stored and read back as a frozenset; writing a set is accepted)",
    bytearray: "bytes (a bytearray is stored and read back as bytes; writing one is accepted)",
    collections.deque: "list (a deque is read back as a read-only list that keeps its maxlen)",
    collections.OrderedDict: "dict (an OrderedDict is read back as a read-only dict in its order)",
    collections.defaultdict: "dict (a defaultdict is read back as a read-only dict)",
    PVector: "list (pyrsistent values are read back as read-only plain containers; writing one is accepted)",
    PList: "list (pyrsistent values are read back as read-only plain containers; writing one is accepted)",
    PDeque: "list (pyrsistent values are read back as read-only plain containers; writing one is accepted)",
    PMap: "dict (pyrsistent values are read back as read-only plain containers; writing one is accepted)",
    PSet: "frozenset (pyrsistent values are read back as read-only plain containers; writing one is accepted)",
}

# What a written value of these types reads back as (when it is not an
# instance of the declared type itself).
_READ_AS: tuple[tuple[type, type], ...] = (
    (set, frozenset),
    (bytearray, bytes),
    (collections.deque, list),
    (PMap, dict),
    (PSet, frozenset),
    (PVector, list),
    (PList, list),
    (PDeque, list),
)


def _label(tp: object) -> str:
    if tp is None or tp is type(None):
        return "None"
    if isinstance(tp, tuple):
        return " | ".join(_label(t) for t in tp)
    if isinstance(tp, type) and typing.get_origin(tp) is None:
        return (
            tp.__qualname__
            if tp.__module__ in ("builtins", "__main__")
            else f"{tp.__module__}.{tp.__qualname__}"
        )
    return repr(tp).replace("typing.", "")


def _classes(tp: object, name: str) -> tuple[type, ...]:
    """The runtime classes ``tp`` stands for, or a TypeError saying why not."""
    if tp is None or tp is type(None):
        return (type(None),)
    if tp is Any:
        return (object,)
    if isinstance(tp, tuple):
        return tuple(c for t in tp for c in _classes(t, name))
    origin = typing.get_origin(tp)
    if origin is types.UnionType or origin is typing.Union:
        return tuple(c for t in typing.get_args(tp) for c in _classes(t, name))
    if origin is typing.Annotated:
        return _classes(typing.get_args(tp)[0], name)
    if isinstance(origin, type):
        return _classes(origin, name)  # list[int]: the origin only
    if isinstance(tp, type):
        advice = _NEVER_READ.get(tp)
        if advice is not None:
            raise ServerStateTypeError(
                name,
                f"server_state.key({name!r}, {_label(tp)}): a read of this key would never give a "
                f"{_label(tp)}; declare {advice}.",
            )
        try:
            isinstance(None, tp)
        except TypeError as exc:  # a Protocol that is not runtime_checkable, ...
            raise ServerStateTypeError(
                name,
                f"server_state.key({name!r}, {_label(tp)}): this type cannot be checked at run time ({exc}).",
            ) from None
        return (tp,)
    raise ServerStateTypeError(
        name,
        f"server_state.key({name!r}, {tp!r}): the type must be a class, a tuple of classes, a union "
        f"such as `int | None`, or a generic such as `list[int]` (its origin is checked); got {tp!r}.",
    )


def _same_class(a: type, b: type) -> bool:
    # A class defined in the app script is a new object on every rerun.
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def _same_validator(a: Callable[[Any], Any] | None, b: Callable[[Any], Any] | None) -> bool:
    if a is b:
        return True
    if a is None or b is None:
        return False
    # A function or lambda defined in the app script is a new object on every rerun.
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    if not isinstance(code_a, types.CodeType) or not isinstance(code_b, types.CodeType):
        return bool(a == b)
    return (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
        and code_a.co_code == code_b.co_code
        and code_a.co_consts == code_b.co_consts
        and code_a.co_names == code_b.co_names
    )


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


class KeySpec:
    """One key's declaration: its type, validator and default."""

    __slots__ = ("accept", "annotation", "classes", "default", "handle", "label", "name", "validator")

    def __init__(
        self, name: str, annotation: object, default: Any, validator: Callable[[Any], Any] | None
    ) -> None:
        if validator is not None and not callable(validator):
            raise ServerStateTypeError(
                name,
                f"server_state.key({name!r}, ..., validator=...): the validator must be callable "
                f"(new_value -> bool), got {type(validator).__name__}.",
            )
        self.name = name
        self.annotation = annotation
        self.classes = tuple(dict.fromkeys(_classes(annotation, name)))
        accept = list(self.classes)
        if complex in accept:
            accept += [int, float]
        elif float in accept:
            accept.append(int)
        self.accept = tuple(dict.fromkeys(accept))
        self.label = _label(annotation)
        self.validator = validator
        self.handle: Key[Any] | None = None
        if default is not _MISSING:
            self.check(default, "default")
            default = read_form(freeze(default, name), name)  # read-only, shared by every session
        self.default = default

    def check(self, value: Any, what: str = "") -> None:
        """Raise if ``value`` may not be written to this key."""
        if not isinstance(value, self.accept) and not self._reads_as(value):
            given = f"the default {_short(value)}" if what else _short(value)
            raise ServerStateTypeError(
                self.name,
                f"server_state[{self.name!r}] is declared {self.label} (server_state.key({self.name!r}, "
                f"{self.label})); got {given} ({_label(type(value))}). Nothing was written: write a "
                f"value of type {self.label}, or declare the key with another type.",
            )
        validator = self.validator
        if validator is None:
            return
        try:
            ok = validator(value)
        except Exception as exc:
            raise ServerStateValidationError(
                self.name,
                f"server_state[{self.name!r}]: {'the default ' if what else ''}{_short(value)} was rejected "
                f"by the key's validator {_describe(validator)}, which raised {type(exc).__name__}: {exc}. "
                "Nothing was written: write a value the validator accepts.",
            ) from exc
        if not ok:
            raise ServerStateValidationError(
                self.name,
                f"server_state[{self.name!r}]: {'the default ' if what else ''}{_short(value)} was rejected "
                f"by the key's validator {_describe(validator)} (it returned {ok!r}; it must return True "
                "to accept). Nothing was written: write a value the validator accepts.",
            )

    def _reads_as(self, value: Any) -> bool:
        for written, read in _READ_AS:
            if isinstance(value, written):
                return issubclass(read, self.accept)
        return False

    def same_as(self, other: KeySpec) -> bool:
        return (
            self.label == other.label
            and len(self.classes) == len(other.classes)
            and all(map(_same_class, self.classes, other.classes))
            and _same_validator(self.validator, other.validator)
            and (
                self.default is other.default
                or (
                    self.default is not _MISSING
                    and other.default is not _MISSING
                    and _equal(self.default, other.default)
                )
            )
        )


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(unchanged(a, b))
    except Exception:
        return False


class Key(Generic[T]):
    """A typed handle on one key of ``server_state``: from
    ``server_state.key(name, type, default=..., validator=...)``.

    ``get()`` reads like ``server_state[name]`` (it binds the session, which
    reruns when the key changes) and returns the default while the key is
    absent, without storing it; ``peek()`` reads without binding. Every write
    of the key, through the handle or not, is checked against the type and
    the validator first."""

    __slots__ = ("_default", "_name", "_owner")

    def __init__(self, owner: ServerState, name: str, default: Any) -> None:
        self._owner = owner
        self._name = name
        self._default = default

    @property
    def name(self) -> str:
        return self._name

    def _absent(self) -> ServerStateKeyError:
        return ServerStateKeyError(
            self._name,
            f"server_state has no key {self._name!r} and its handle has no default: set it first "
            f"(.set(...)), or declare it with server_state.key({self._name!r}, ..., default=...).",
        )

    def get(self) -> T:
        """The value (read-only), or the default while the key is absent.
        Binds the running session: it reruns when the key changes."""
        value = self._owner.get(self._name, self._default)
        if value is _MISSING:
            raise self._absent()
        return typing.cast("T", value)

    def peek(self) -> T:
        """As ``get()``, without binding: no rerun when the key changes."""
        value = self._owner.peek(self._name, self._default)
        if value is _MISSING:
            raise self._absent()
        return typing.cast("T", value)

    def set(self, value: T) -> None:
        """Write the key (checked against its type and validator)."""
        self._owner[self._name] = value

    def update(self, fn: Callable[[T], T]) -> T:
        """Atomically replace the value with ``fn(value)`` (the default while
        absent) and return it, as ``server_state.update``: ``fn`` must be
        pure, it is retried when another writer got in first, and its result
        is checked before anything is committed."""
        return typing.cast("T", self._owner.update(self._name, fn, default=self._default))

    def exists(self) -> bool:
        """Whether the key is set (binds, like ``name in server_state``)."""
        return self._name in self._owner

    def delete(self) -> bool:
        """Delete the key (``get()`` gives the default again); False when it
        was not set. Deletes are not validated."""
        try:
            del self._owner[self._name]
        except ServerStateKeyError:
            return False
        return True

    @property
    def version(self) -> int:
        """``server_state.version(name)``: advances on every real change."""
        return self._owner.version(self._name)

    def __repr__(self) -> str:
        spec = self._owner._typed.get(self._name)
        label = spec.label if spec is not None else "?"
        return f"<server_state key {self._name!r}: {label}>"


def register(
    owner: ServerState,
    registry: dict[str, KeySpec],
    name: str,
    annotation: object,
    default: Any,
    validator: Callable[[Any], Any] | None,
) -> Key[Any]:
    """Declare ``name`` (see ``ServerState.key``); the same declaration again
    returns the same handle."""
    spec = KeySpec(name, annotation, default, validator)
    with _register_lock:
        existing = registry.get(name)
        if existing is not None:
            if not existing.same_as(spec):
                raise ServerStateError(
                    f"server_state.key({name!r}, ...) was already declared as {existing.label}"
                    f"{_extras(existing)}; now as {spec.label}{_extras(spec)}. A key has one declaration "
                    "per process: declare it once (e.g. in a module the pages import) and share the handle."
                )
            handle = existing.handle
            assert handle is not None
            spec.handle = handle
            registry[name] = spec  # a class or validator redefined by a script rerun: the newest one
            return handle
        spec.handle = handle = Key(owner, name, spec.default)
        registry[name] = spec
    # Outside the lock: the validator is the app's code (it may declare a key itself).
    try:
        current = owner.peek(name, _MISSING)
        if current is not _MISSING:
            try:
                spec.check(current)
            except ServerStateError as exc:
                raise type(exc)(
                    name,
                    f"server_state.key({name!r}, {spec.label}): the key already holds a value that this "
                    f"declaration refuses: {exc} Delete it first (del server_state[{name!r}]) or "
                    "declare what it holds.",
                ) from None
    except BaseException:
        with _register_lock:
            if registry.get(name) is spec:
                del registry[name]
        raise
    return handle


def _extras(spec: KeySpec) -> str:
    out = ""
    if spec.validator is not None:
        out += f" with validator {_describe(spec.validator)}"
    if spec.default is not _MISSING:
        out += f" with default {_short(spec.default)}"
    return out


def check_update(spec: KeySpec, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` whose result is checked before the store commits it (inside
    its retry loop: a rejected result commits nothing)."""

    def checked(current: Any) -> Any:
        new = fn(current)
        spec.check(new)
        return new

    return checked


def check_transact(
    registry: dict[str, KeySpec], fn: Callable[[PMap[str, Any]], PMap[str, Any]]
) -> Callable[[PMap[str, Any]], PMap[str, Any]]:
    """``fn`` whose returned map is checked, for the registered keys it
    writes, before the store commits it."""

    def checked(state: PMap[str, Any]) -> PMap[str, Any]:
        result = fn(state)
        if not isinstance(result, PMap):
            return result  # the store says what is wrong
        record: TxRecord | None = getattr(state, "record", None)
        base = TxMap.unwrap(state)
        if (
            isinstance(result, TxMap)
            and record is not None
            and result.record is record
            and not record.read_all
        ):
            for key in record.written:
                spec = registry.get(key)
                if spec is not None:
                    new = PMap.get(result, key, _ABSENT)
                    if new is not _ABSENT and new is not PMap.get(base, key, _ABSENT):
                        spec.check(new)
            return result
        # Built another way, or fn looked at the whole map: the store compares
        # every key (O(keys)), and so do we, without marking anything read.
        for key, new in TxMap.unwrap(result).items():
            if isinstance(key, str):
                spec = registry.get(normalise_key(key))
                if spec is not None and new is not PMap.get(base, spec.name, _ABSENT):
                    spec.check(new)
        return result

    return checked
