"""The README and the pages under docs/ hold together: every relative link
points to a file (and a heading, for ``#anchor``) that exists, the README's
quickstart is the seed's counter with only the import line changed (the code
of examples/global_counter.py), and every Python block parses.

Anchors follow GitHub's rule: the heading's text, lowercased, with
everything but letters, digits, spaces, ``-`` and ``_`` removed and spaces
turned into ``-``; a repeated heading gets ``-1``, ``-2``...
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_LINK = re.compile(r"(?<!!)\[(?:[^\]]|\][^(])*?\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The page without its code blocks and code spans (links there are not links)."""
    return re.sub(r"`[^`\n]+`", "", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in _FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if not m:
            continue
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def relative_links(path: Path) -> list[str]:
    links = []
    for m in _LINK.finditer(_prose(path.read_text(encoding="utf-8"))):
        target = m.group(1) or m.group(2)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked
            links.append(target)
    return links


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for link in relative_links(page):
        target, _, anchor = link.partition("#")
        dest = (page.parent / target).resolve() if target else page
        if not dest.exists():
            broken.append(f"{link}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{link}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_link_checker_sees_links_and_anchors() -> None:
    """The checker itself: it finds links (not those in code blocks) and
    computes GitHub's anchors."""
    assert (
        _slug("The state: `server_state` and `server_state_lock`")
        == "the-state-server_state-and-server_state_lock"
    )
    assert _slug("1. The import line") == "1-the-import-line"
    assert "docs/api.md" in relative_links(ROOT / "README.md")
    assert "replicas.md#deploying-behind-a-load-balancer" in relative_links(ROOT / "docs" / "reruns.md")


def test_every_page_is_in_the_index() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not list {page.name}"
            assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


def _code(source: str) -> str:
    """Code lines without the module docstring, comments, or blank lines."""
    tree = ast.parse(source)
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        source = "\n".join(source.splitlines()[body[0].end_lineno :])
    return "\n".join(line for line in source.splitlines() if line.strip())


def test_the_quickstart_is_the_seed_counter_with_the_import_changed() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [code for lang, code in _FENCE.findall(readme) if lang == "python"]
    assert blocks, "README.md has no python block"
    quickstart = blocks[0]
    assert "from server_state import server_state, server_state_lock" in quickstart
    assert "streamlit_server_state" not in quickstart
    assert _code(quickstart) == _code((ROOT / "examples" / "global_counter.py").read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_parses(page: Path) -> None:
    for lang, code in _FENCE.findall(page.read_text(encoding="utf-8")):
        if lang == "python":
            ast.parse(code)
