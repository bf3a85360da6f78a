"""docs/references.md gives the full reference of every paper or library a method cites."""

from __future__ import annotations

import inspect
import re
import unicodedata
from pathlib import Path

import pytest

from xai_core import citations
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


def test_each_cited_name_finds_its_own_row_by_its_anchor():
    """The anchor a method's docstring and the app link to is the row of the paper it cites (the
    row's short name starts the cited text), not merely some row."""
    rows = {m["anchor"]: _plain(m["short"].strip()) for m in citations._ROW.finditer(REFERENCES.read_text())}
    for spec in method_specs():
        for cited in spec.references:
            found = rows.get(citations.anchor(cited))
            assert found is not None and _plain(cited).startswith(found), (spec.name, cited, found)


def test_anchors_follow_one_rule():
    assert citations.anchor("003: Grad-CAM for video and regression") == "p003"
    assert citations.anchor("Selvaraju et al. 2017") == "selvaraju2017"
    assert citations.anchor("Zeiler & Fergus 2014") == "zeiler2014"
    assert citations.anchor("Farnebäck 2003") == "farneback2003"
    assert citations.anchor("Ismail et al. 2020, algorithm 1 of 002") == "ismail2020"
    assert citations.anchor("Captum Occlusion") == "captum"
    with pytest.raises(ValueError, match="neither a paper number nor a name"):
        citations.anchor("(2017)")


def test_every_method_docstring_links_the_references_it_cites():
    for spec in method_specs():
        doc = inspect.getdoc(spec.fn)
        for cited in spec.references:
            assert f"{cited}: docs/references.md#{citations.anchor(cited)}" in doc, spec.name
    # the section keeps the docstring's own indentation, so help() still shows the body unindented
    from xai_core.methods.cam import gradcam

    lines = inspect.getdoc(gradcam).splitlines()
    assert lines[1].startswith("resolution") and "References (full entries in docs/references.md):" in lines


def test_the_full_reference_is_read_from_the_document():
    full = citations.full_reference("Sundararajan et al. 2017")
    assert full.startswith("Mukund Sundararajan, Ankur Taly, Qiqi Yan. *Axiomatic Attribution for Deep Networks.*")
    assert "ICML 2017" in full
    assert "arxiv.org/abs/1703.01365" in full
    assert citations.full_reference("004: LRP through VGG16+LSTM").startswith("Jin Zewei, Inwhee Joe")
    assert citations.full_reference("Nobody et al. 1999") is None
    assert citations.full_reference("Sundararajan et al. 2017", path=REFERENCES.with_name("absent.md")) is None
