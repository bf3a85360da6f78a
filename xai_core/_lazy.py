"""A package's names imported from their modules when first used (PEP 562), so that importing the
package (``import xai_core``, the command line's help, ``xai batch``'s start) does not pay for
torch and what it pulls in."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict, submodules: bool = False
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``: a name of ``exports``
    (public name -> the relative module that defines it) is imported on first use and kept in
    ``namespace`` (the package's globals); with ``submodules``, another public name that is a
    submodule is imported as one."""

    def __getattr__(name: str) -> object:
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
            namespace[name] = value
            return value
        if submodules and not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
