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


def write_catalog(path: Path = CATALOG) -> Path:
    """Write the live registry's entries to ``path`` (the catalog file by default)."""
    path.write_text(json.dumps(live_entries(), indent=1) + "\n")
    return path


if __name__ == "__main__":
    print(f"wrote {write_catalog()}")
