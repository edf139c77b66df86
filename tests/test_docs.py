"""The README is a landing page; the documentation site (``make docs``, strict) holds the rest."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README_MAX_BYTES = 15_000


def test_readme_is_a_landing_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= README_MAX_BYTES, "README.md grew past 15 KB: move detail to docs/content"
    for heading in ("## Two commands", "## One example", "## Where to read next"):
        assert heading in text
    assert "make demo" in text and "make test" in text


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [t for t in re.findall(r"\]\(([^)#]+)\)", text) if not re.match(r"[a-z]+://", t)]
    assert links, "the README should link the documentation pages"
    missing = [t for t in links if not (ROOT / t).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_every_docs_page_is_in_the_site_navigation():
    config = (ROOT / "docs" / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.relative_to(ROOT / "docs" / "content").as_posix() for p in (ROOT / "docs" / "content").rglob("*.md")}
    unlisted = sorted(p for p in pages if p not in config)
    assert not unlisted, f"pages missing from docs/mkdocs.yml's nav: {unlisted}"
