"""The registered methods as data, for ``xai methods`` without a model: the command line lists
them from ``method_catalog.json`` without importing torch or any method.

The file holds ``MethodSpec.to_dict()`` of every registered method, in the registry's order
(family, then name); a test checks that it equals the live registry.  After adding or changing a
method, write it again with ``python -m xai_core.method_catalog``.
"""

from __future__ import annotations

import json
from pathlib import Path

CATALOG = Path(__file__).with_name("method_catalog.json")


def catalog_entries() -> list[dict]:
    """Every method as ``MethodSpec.to_dict()`` gives it (name, family, requires, tasks, params,
    description, references, reading), read from the catalog file."""
    return json.loads(CATALOG.read_text())


def live_entries() -> list[dict]:
    """The same entries from the registry itself (imports every method, and torch), as JSON gives them back."""
    from .methods.machinery.registry import method_specs

    return json.loads(json.dumps([spec.to_dict() for spec in method_specs()]))


def card_markdown(entry: dict) -> str:
    """One method's card as Markdown: what it computes, the papers (full references), what it
    needs, what it cannot show, how it fails, what it costs, and its parameters."""
    from .citations import full_reference

    card = entry.get("card")
    lines = [f"### {entry['name']}", "", f"*{entry['family']} · {entry['description']}*", ""]
    if card is None:  # a method registered without one (a user's own)
        return "\n".join([*lines, "No card: its registration gives none.", ""])
    lines += [f"**Computes.** {card['computes']}", ""]
    if entry["references"]:
        papers = "; ".join(full_reference(name) or name for name in entry["references"])
        lines += [f"**Papers.** {papers}", ""]
    needs = card["needs"]
    if entry["requires"]:
        needs += f" Capabilities: {', '.join(r.replace('_', ' ') for r in entry['requires'])}."
    if entry["tasks"] != ["classification", "regression"]:
        needs += f" Tasks: {', '.join(entry['tasks'])} only."
    lines += [f"**Needs.** {needs}", "", f"**Cannot show.** {card['cannot_show']}", ""]
    lines += ["**Known failures.**", *(f"- {f}" for f in card["failures"]), ""]
    lines += [f"**Cost.** {card['cost']}", ""]
    if entry["params"]:
        params = ", ".join(f"`{p['name']}` ({p['default']!r})" for p in entry["params"])
        lines += [f"**Parameters** (defaults). {params}", ""]
    return "\n".join(lines)


def cards_markdown(entries: list[dict]) -> str:
    """Every method's card, by family (docs/methods.md)."""
    parts = [
        "# Method cards",
        "",
        "What each registered method computes, the paper, what it needs from a model, what it cannot show, its "
        "known failures and its cost. Generated from the registry by "
        "`python -m xai_core methods --cards --markdown docs/methods.md`; a test keeps this file equal to it. "
        "The app shows the same card beside each method, with the sanity result measured for the loaded model "
        "where there is one (EVALUATION.md).",
        "",
    ]
    family = None
    for entry in entries:
        if entry["family"] != family:
            family = entry["family"]
            parts += [f"## {family.capitalize()} methods", ""]
        parts.append(card_markdown(entry))
    return "\n".join(parts).rstrip() + "\n"


def write_catalog(path: Path = CATALOG) -> Path:
    """Write the live registry's entries to ``path`` (the catalog file by default)."""
    path.write_text(json.dumps(live_entries(), indent=1) + "\n")
    return path


if __name__ == "__main__":
    print(f"wrote {write_catalog()}")
