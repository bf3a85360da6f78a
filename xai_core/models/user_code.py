"""A user's own Python code that builds their network: ``FILE.py:factory`` or ``PACKAGE:factory``.

The code may span several files, as code on a user's disk does:

* a file beside the modules it imports (``from layers import Block``): the file's folder is
  importable while the file is imported and while the factory builds the network;
* a module inside a package (a folder with ``__init__.py``, relative imports such as
  ``from .layers import Block``): it is imported by its dotted name from the package's root;
* a package folder itself (``path/to/mypkg:build``): its ``__init__`` is imported.

Each load imports the code afresh: modules imported earlier from the same folders are dropped
first and no bytecode is cached, so an edited file is read again and two users' ``layers.py``
do not meet.  Every error
of the user's code becomes one ``ModelError``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from torch import nn

from .base import ModelError

_USER_CODE = threading.RLock()
FACTORY_SPEC = re.compile(r"^(?P<code>.+):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


def parse_factory(text: str) -> tuple[Path, str] | None:
    """'path/to/file.py:name' or 'path/to/package:name' (a folder; ``~`` expanded) -> (the
    absolute Path, 'name'); None for anything else."""
    match = FACTORY_SPEC.match(text)
    if match is None:
        return None
    code = Path(match["code"]).expanduser()
    if match["code"].endswith(".py") or code.is_dir():
        return code.absolute(), match["name"]
    return None


def package_root(path: Path) -> Path | None:
    """The outermost folder of the package ``path`` (a .py file or a folder) belongs to: climbing
    while the folder holds ``__init__.py``; None for a file outside any package."""
    folder = (path if path.is_dir() else path.parent).resolve()
    root = None
    while folder.parent != folder and _is_file(folder / "__init__.py"):
        root, folder = folder, folder.parent
    return root


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where the folder cannot be read."""
    try:
        return path.is_file()
    except OSError:
        return False


def _module_name(path: Path, root: Path) -> str:
    """The dotted name of ``path`` (a .py file or a package folder) under the package ``root``."""
    parts = list(path.resolve().relative_to(root.parent).parts)
    if not path.is_dir():
        parts[-1] = Path(parts[-1]).stem
        if parts[-1] == "__init__":
            parts.pop()
    return ".".join(parts)


def _installed(module: ModuleType, prefixes: set[Path]) -> bool:
    """Whether a module comes with Python or an installed package (never dropped); ``prefixes``:
    Python's own folders."""
    file = getattr(module, "__file__", None)
    if not file:
        return True
    where = Path(file).resolve()
    return any(where.is_relative_to(p) for p in prefixes) or "site-packages" in where.parts


def _own_names(path: Path, root: Path | None) -> set[str]:
    """The top-level names the user's code brings: its package's (a module of a package), or
    those of the .py files and packages beside the file (a plain file)."""
    if root is not None:
        return {root.name}
    folder = path.parent
    try:
        names = {p.stem for p in folder.glob("*.py")}
        names |= {p.name for p in folder.iterdir() if p.is_dir() and _is_file(p / "__init__.py")}
    except OSError:
        names = {path.stem}
    return names - {"xai_core", "workbench"}


def _forget_modules(names: set[str]) -> None:
    """Drop the imported modules the user's code would import by its own names (and their
    submodules), wherever an earlier load imported them from, so that they are read again from
    here; installed modules are kept (a user's module that shares an installed one's name gets the
    installed one, as Python gives it)."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in names and not _installed(module, prefixes):
            del sys.modules[name]


@contextmanager
def importable(path: Path) -> Iterator[None]:
    """While inside: the user's code at ``path`` can import what lies beside it (the file's
    folder, or the parent of its package's root, first on sys.path); no other thread loads user
    code meanwhile, and sys.path is given back as it was."""
    root = package_root(path)
    folder = str((root.parent if root is not None else (path if path.is_dir() else path.parent)).resolve())
    with _USER_CODE:  # one user's code at a time: sys.path and sys.modules are the process's
        saved_path = list(sys.path)
        sys.path.insert(0, folder)
        writes_bytecode = sys.dont_write_bytecode
        sys.dont_write_bytecode = True  # no __pycache__ in the user's folders, and no stale one of ours
        importlib.invalidate_caches()  # files written since the last look are found
        try:
            yield
        finally:
            sys.dont_write_bytecode = writes_bytecode
            sys.path[:] = saved_path  # also what the user's code added itself


def import_user_code(path: Path) -> ModuleType:
    """Import the user's file, module of a package, or package folder (call it inside
    ``importable(path)``); errors become one ModelError."""
    if path.is_dir():
        if not (path / "__init__.py").is_file():
            raise ModelError(f"{path} is a folder without __init__.py: name a .py file in it, as {path}/FILE.py:NAME")
    elif not path.is_file():
        raise ModelError(f"{path}: no such Python file")
    root = package_root(path)
    _forget_modules(_own_names(path, root))
    try:
        if root is not None:
            return importlib.import_module(_module_name(path, root))
        name = "xai_user_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ModelError(f"{path} cannot be imported as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    except ModelError:
        raise
    except (Exception, SystemExit) as exc:
        raise ModelError(f"importing {path.name} failed: {type(exc).__name__}: {exc}") from None


def build_factory_net(path: Path, name: str, config: dict) -> nn.Module:
    """``name(**config)`` from the user's code: a function or an nn.Module class -> the network
    (the code's folder stays importable while the factory runs: it may import lazily)."""
    with importable(path):
        module = import_user_code(path)
        factory = getattr(module, name, None)
        if factory is None:
            defined = sorted(
                n
                for n, v in vars(module).items()
                if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == module.__name__
            )
            raise ModelError(f"{path.name} has no {name!r}; it defines: {', '.join(defined) or 'nothing callable'}")
        if not callable(factory):
            raise ModelError(f"{path.name}:{name} is a {type(factory).__name__}, not a function or class")
        try:
            net = factory(**config)
        except Exception as exc:
            args = ", ".join(f"{k}={v!r}" for k, v in config.items())
            raise ModelError(f"{path.name}:{name}({args}) failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(net, nn.Module):
        raise ModelError(f"{path.name}:{name}() returned a {type(net).__name__}, not a torch.nn.Module")
    return net
