"""The methods as data (xai_core/method_catalog.json), which `xai methods` lists without torch: it
must say what the live registry says."""

from __future__ import annotations

import json

from xai_core import method_catalog


def test_the_catalog_is_the_live_registry():
    live = method_catalog.live_entries()
    assert method_catalog.catalog_entries() == live, (
        "xai_core/method_catalog.json differs from the registry: run `python -m xai_core.method_catalog`"
    )
    assert {"name", "family", "description", "params"} <= set(live[0])


def test_the_comparison_sees_a_changed_method(tmp_path, monkeypatch):
    """write_catalog writes what the registry says; a catalog that differs from it is seen."""
    path = method_catalog.write_catalog(tmp_path / "catalog.json")
    monkeypatch.setattr(method_catalog, "CATALOG", path)
    assert method_catalog.catalog_entries() == method_catalog.live_entries()
    entries = json.loads(path.read_text())
    entries[0]["description"] += " (changed)"
    path.write_text(json.dumps(entries))
    assert method_catalog.catalog_entries() != method_catalog.live_entries()
