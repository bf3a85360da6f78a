"""Where a method's references are written out: each short name a method cites ("Selvaraju et al.
2017", "003: Grad-CAM for video and regression", "Captum Occlusion") has one row in
``docs/references.md`` (authors, title, venue, year, link), found by its anchor.

Pure text: no torch, nothing of the workbench.  The method docstrings get their links from here
(``references_section``) and the app its full references (``full_reference``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

REFERENCES_DOC = "docs/references.md"
_DOC_PATH = Path(__file__).resolve().parents[1] / REFERENCES_DOC
_ROW = re.compile(r'^\| <a id="(?P<anchor>[a-z0-9]+)"></a>(?P<short>[^|]+?) \| (?P<full>[^|]+?) \|', re.MULTILINE)


def anchor(short_name: str) -> str:
    """The anchor of a cited short name in docs/references.md.

    "003: Grad-CAM for video" -> "p003"; "Selvaraju et al. 2017" -> "selvaraju2017";
    "Zeiler & Fergus 2014" -> "zeiler2014"; "Farneback 2003" -> "farneback2003";
    "Captum Occlusion" -> "captum" (a name without a year is its first word).
    """
    text = unicodedata.normalize("NFKD", short_name).encode("ascii", "ignore").decode().strip()
    paper = re.match(r"(\d{3})\b", text)
    if paper:
        return "p" + paper.group(1)
    first = re.match(r"[A-Za-z]+", text)
    if first is None:
        raise ValueError(f"cannot tell the reference {short_name!r}: it starts with neither a paper number nor a name")
    year = re.search(r"\b((?:19|20)\d\d)\b", text)
    return first.group(0).lower() + (year.group(1) if year else "")


def link(short_name: str) -> str:
    """``docs/references.md#anchor`` for a cited short name (a path from the repository's root)."""
    return f"{REFERENCES_DOC}#{anchor(short_name)}"


def references_section(references: tuple[str, ...] | list[str]) -> str:
    """The "References" paragraph a method's docstring ends with: each short name and its link."""
    if not references:
        return ""
    lines = "\n".join(f"    {name}: {link(name)}" for name in references)
    return f"References (full entries in {REFERENCES_DOC}):\n{lines}\n"


@cache
def _rows(path: Path = _DOC_PATH) -> dict[str, tuple[str, str]]:
    """anchor -> (short name, full reference in Markdown), read from the references document;
    empty where the package runs without its checkout (the document is not installed)."""
    if not path.is_file():
        return {}
    return {m["anchor"]: (m["short"].strip(), m["full"].strip()) for m in _ROW.finditer(path.read_text())}


def full_reference(short_name: str, path: Path | None = None) -> str | None:
    """The full reference (Markdown: authors, *title*, venue, year, link) of a cited short name,
    or None where the document is not there or has no row for it."""
    row = _rows(path or _DOC_PATH).get(anchor(short_name))
    return row[1] if row else None


def documented_anchors(path: Path | None = None) -> set[str]:
    """Every anchor the references document holds."""
    return set(_rows(path or _DOC_PATH))
