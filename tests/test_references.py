"""docs/references.md gives the full reference of every paper or library a method cites."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from xai_core.methods.machinery.registry import method_specs

REFERENCES = Path(__file__).resolve().parents[1] / "docs" / "references.md"


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def short_names() -> list[str]:
    """The short names in the first column of the references' tables (after each row's anchor)."""
    rows = re.findall(r'^\| <a id="[a-z0-9]+"></a>([^|]+?) \|', REFERENCES.read_text(), flags=re.MULTILINE)
    return [_plain(name) for name in rows]


def test_every_reference_a_method_cites_is_in_the_references_document():
    names = short_names()
    assert {"000", "004", "adebayo et al. 2018", "selvaraju et al. 2017", "farneback 2003"} <= set(names)
    missing = [
        (spec.name, cited)
        for spec in method_specs()
        for cited in spec.references
        if not any(_plain(cited).startswith(name) for name in names)
    ]
    assert missing == []


def test_every_reference_has_a_title_and_a_year_or_its_copy():
    for line in REFERENCES.read_text().splitlines():
        if line.startswith('| <a id="'):
            full = line.split(" | ")[1]
            assert "*" in full, line  # the title, in italics
            assert re.search(r"\b(19|20)\d\d\b", full) or "shared/papers/" in full, line
