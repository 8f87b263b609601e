"""pyrsistent behind one compat module: server_state/_pcompat.py is the only
module that reads pyrsistent's private layout (docs/pyrsistent.md), and it
refuses a pyrsistent without that layout with a message naming the version
and the doc."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from pyrsistent import pdeque, pmap, pvector

from server_state import _pcompat

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "server_state"
DOC = ROOT / "docs" / "pyrsistent.md"

# pyrsistent's private names the value model reads (docs/pyrsistent.md lists
# each). `_maxlen` is not listed: pdeque's is read through its public
# `maxlen`, and FrozenDeque has a `_maxlen` of its own.
PRIVATE = frozenset(
    {
        "_count",  # PythonPVector
        "_shift",
        "_root",
        "_tail",
        "_tail_offset",
        "_node_for",
        "_size",  # PMap
        "_buckets",
        "_left_list",  # PDeque
        "_right_list",
        "_length",
    }
)
_GETATTRS = {"getattr", "hasattr", "setattr", "delattr"}


def private_reads(path: Path) -> list[str]:
    """``file:line name`` of every read of a PRIVATE name on an object other
    than ``self``, by attribute or by getattr() and the like, and every import
    from a private pyrsistent module."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[str] = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
            if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _GETATTRS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in PRIVATE
        ):
            name = str(node.args[1].value)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pyrsistent._"):
            name = node.module
        elif isinstance(node, ast.Import):
            name = next((a.name for a in node.names if a.name.startswith("pyrsistent._")), None)
        if name is not None:
            out.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return out


def test_only_pcompat_reads_pyrsistent_private_names() -> None:
    found = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_pcompat.py"
        for hit in private_reads(path)
    ]
    assert found == [], "pyrsistent private names read outside server_state/_pcompat.py"


def test_the_check_sees_the_reads_in_pcompat() -> None:
    # The check itself works: it finds the reads _pcompat does make.
    names = {hit.rsplit(" ", 1)[1] for hit in private_reads(PACKAGE / "_pcompat.py")}
    assert names >= {"_root", "_shift", "_tail", "_tail_offset", "_count", "_node_for", "_buckets", "_size"}
    assert names >= {"_left_list", "_right_list", "pyrsistent._pvector"}


def test_every_private_name_is_documented() -> None:
    text = DOC.read_text()
    assert [name for name in sorted(PRIVATE) if f"`{name}`" not in text] == []


def test_pyproject_bounds_pyrsistent_and_points_to_the_doc() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    line = next(line for line in pyproject.splitlines() if '"pyrsistent' in line)
    assert "<" in line and "docs/pyrsistent.md" in line


def test_layout_is_there() -> None:
    assert _pcompat._layout_missing() == []


def test_a_missing_layout_fails_at_import_naming_version_and_doc() -> None:
    code = "import pyrsistent._pvector as m\ndel m.PythonPVector._node_for\nimport server_state\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ")
    assert "pyrsistent 0." in last and "_node_for" in last and "docs/pyrsistent.md" in last


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 64, 1000, 1057, 33_000])
def test_vector_changed_finds_exactly_the_new_items(n: int) -> None:
    old = _pcompat.python_pvector(list(range(n)))
    marker = object()
    new = old.append(marker)
    assert _pcompat.vector_changed(new, old) == [(n, marker)]
    if n:
        other = object()
        changed = new.set(n // 2, other)
        assert _pcompat.vector_changed(changed, new) == [(n // 2, other)]
        assert _pcompat.vector_changed(changed, old) == [(n // 2, other), (n, marker)]
    assert _pcompat.vector_changed(old, old) == []
    assert _pcompat.vector_changed(new, None) == list(enumerate(new))
    assert _pcompat.vector_changed(pvector(list(new)), new) == []


def test_pmap_and_pdeque_helpers() -> None:
    m = pmap({i: str(i) for i in range(300)})
    assert _pcompat.pmap_as(_pcompat.PMAP, m) == m
    assert _pcompat.pmap_buckets(_pcompat.pmap_as(_pcompat.PMAP, m)) is _pcompat.pmap_buckets(m)
    py = _pcompat.pmap_with_python_buckets(m)
    assert py == m and type(_pcompat.pmap_buckets(py)) is _pcompat.PY_PVECTOR
    d = pdeque([1, 2, 3], maxlen=4).appendleft(0)
    left, right = _pcompat.pdeque_lists(d)
    again = _pcompat.pdeque_with_lists(d, left, right)
    assert list(again) == [0, 1, 2, 3] and again.maxlen == 4
