"""Method cards (issue 19, point 6): every registered method says what it computes, the paper,
what it needs, what it cannot show, how it fails and what it costs; `xai methods --cards` and
docs/methods.md show them; the Explain page shows each beside its output, and its teaching toggle
scores the maps against Moving Shapes' ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import open_page

from xai_core import method_catalog
from xai_core.cli import main
from xai_core.methods.machinery.registry import method_specs

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_every_method_has_a_whole_card_and_a_paper():
    for spec in method_specs():
        card = spec.card
        assert card is not None, spec.name
        assert all(len(text) > 20 for text in (card.computes, card.needs, card.cannot_show)), spec.name
        assert card.failures and all(f.endswith(".") for f in card.failures), spec.name
        assert "pass" in card.cost or "flows" in card.cost, spec.name
        assert spec.references, f"{spec.name} cites no paper"


def test_docs_methods_md_is_the_registrys_cards():
    expected = method_catalog.cards_markdown(method_catalog.catalog_entries())
    assert (ROOT / "docs" / "methods.md").read_text() == expected, (
        "docs/methods.md is stale: run `python -m xai_core methods --cards --markdown docs/methods.md`"
    )
    for spec in method_specs():
        assert f"### {spec.name}\n" in expected and spec.card.cannot_show in expected


def test_methods_cards_for_a_model_lists_only_what_it_can_run(tiny_checkpoints, capsys):
    assert main(["methods", "--cards", "--model", "tiny_r3d"]) == 0
    out = capsys.readouterr().out
    assert "### gradcam\n" in out and "**Known failures.**" in out
    assert "### attention_cls" not in out  # the 3D CNN has no attention


def test_the_explain_page_shows_the_card_and_the_teaching_notes(app_zoo):
    at = open_page("pages/explain.py")
    at.multiselect(key="methods_a_cnn_transformer").set_value(["gradcam", "saliency"]).run()
    cards = [e for e in at.expander if e.label.startswith("About ")]
    assert [e.label.split(":")[0] for e in cards] == ["About gradcam", "About saliency"]
    texts = " ".join(m.value for e in cards for m in e.markdown)
    assert "Cannot show." in texts and "Known failures." in texts
    assert not any("Teaching notes" in m.value for m in at.markdown)
    at.toggle(key="teaching").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    notes = next(m.value for m in at.markdown if "Teaching notes" in m.value)
    assert "**gradcam**: the peak is on the shape" in notes and "no sanity result for this model yet" in notes
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert all(c.endswith(("peak on the shape ✓", "peak off the shape ✗")) for c in captions[1:3]), captions


def test_the_teaching_verdicts_are_the_pointing_game():
    from workbench import teach

    truth = np.zeros((3, 20, 20), bool)
    truth[:, 5:8, 5:8] = True
    maps = np.zeros((3, 20, 20))
    maps[0, 6, 6] = 1  # on the shape
    maps[1, 18, 18] = 1  # far from it
    maps[2, 9, 9] = 1  # next to it: within the tolerance of a 20-pixel frame? (15 px per 224 -> 1.3 px)
    hits = teach.pointing(maps, "positive", truth)
    assert list(hits["pointing"]) == [True, False, False]
    text = teach.pointing_summary("m", hits, np.array([False, False, True]))
    assert "in 1 of 2 frames (50%" in text
