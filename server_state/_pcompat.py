"""pyrsistent's private layout, in one place: what the value model reads
beyond pyrsistent's public API, for pyrsistent >= 0.20.

pyrsistent has two vectors: the C extension's (``pvectorc``, used by
``pvector()`` when it imports) and the pure-Python ``PythonPVector`` (always
there, and what ``pvector()`` gives without the C extension: on a Python with
no pyrsistent wheel, such as 3.13 for 0.20, or with
``PYRSISTENT_NO_C_EXTENSION`` set). The library keeps large vectors as
pure-Python ones, whose trie it reads to tell what a new version changed.
Without the C extension there is no C vector: ``C_PVECTOR`` is None, and
nothing must be converted (converting a vector to its own type copies it:
identity lost, and an append O(n)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from pyrsistent import pmap, pset, pvector

__all__ = [
    "C_PVECTOR",
    "PMAP",
    "PSET",
    "PY_PVECTOR",
    "SHIFT",
    "TRIE",
    "python_pvector",
]

# Typed Any: checks like `type(v) is PMAP` should not narrow v for mypy.
PMAP: Any = type(pmap())
PSET: Any = type(pset())

python_pvector: Callable[[Any], Any] | None
try:  # a private name of pyrsistent's, stable since 0.11
    from pyrsistent._pvector import python_pvector as _imported

    python_pvector = cast("Callable[[Any], Any]", _imported)
except ImportError:  # pragma: no cover
    python_pvector = None

PY_PVECTOR: Any = type(python_pvector([])) if python_pvector is not None else None
_DEFAULT: Any = type(pvector())
# The C extension's vector; None when pvector() is the pure-Python one.
C_PVECTOR: Any = _DEFAULT if _DEFAULT is not PY_PVECTOR else None

# The trie of the pure-Python PVector (``_count``, ``_shift``, ``_root``,
# ``_tail``, ``_tail_offset``, ``_node_for``): without it, vectors are
# compared item by item (at C speed, O(n)).
TRIE = (
    PY_PVECTOR is not None
    and {"_count", "_shift", "_root", "_tail", "_tail_offset"} <= set(getattr(PY_PVECTOR, "__slots__", ()))
    and callable(getattr(PY_PVECTOR, "_node_for", None))
)
SHIFT = 5  # bits per level of that trie (pyrsistent's _pvector.py)
