"""The layers: the library (``xai_core``) runs without Streamlit and without the app's package
(``workbench``); only the app (app.py, pages/, workbench/) imports Streamlit.  The import-linter
contracts in pyproject.toml (layers, forbidden imports, no cycle) hold, and break when a module
crosses them, even by an import inside a function."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP_ONLY = ("streamlit", "workbench")

# Run in a fresh interpreter: a finder placed first refuses Streamlit and workbench (as if they
# were not installed) and notes which module asked; then every module of xai_core is imported.
IMPORT_ALL = r"""
import importlib, importlib.abc, json, sys

APP_ONLY, NAMES = json.loads(sys.argv[1]), json.loads(sys.argv[2])


class Refuse(importlib.abc.MetaPathFinder):
    asked = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in APP_ONLY:
            return None
        frame = sys._getframe(1)
        while frame is not None and ("importlib" in frame.f_code.co_filename or frame.f_globals is globals()):
            frame = frame.f_back
        importer = frame.f_globals.get("__name__", "?") if frame is not None else "?"
        self.asked.append([name, importer])
        raise ModuleNotFoundError(f"No module named {name!r} (refused by the layer test)", name=name)


sys.meta_path.insert(0, Refuse())
import xai_core

failed = {}
for name in NAMES:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({
    "package": xai_core.__file__,
    "failed": failed,
    "asked": Refuse.asked,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in APP_ONLY),
}))
"""


def library_modules() -> list[str]:
    """Every module of xai_core, from its files (a module without its package's ``__init__.py``
    would be missed by ``pkgutil.walk_packages``, not here)."""
    names = []
    for path in sorted((ROOT / "xai_core").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def import_all_without_the_app(names: list[str]) -> dict:
    """Import ``names`` in a fresh interpreter (in this checkout) where Streamlit and workbench cannot be imported."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, json.dumps(APP_ONLY), json.dumps(names)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_library_module_imports_without_streamlit_or_the_app():
    names = library_modules()
    assert {"xai_core", "xai_core.methods.cam", "xai_core.models.zoo", "xai_core.zoo_report"} <= set(names)
    result = import_all_without_the_app(names)
    assert Path(result["package"]).resolve() == ROOT / "xai_core" / "__init__.py"  # this checkout's code
    assert result["failed"] == {}
    assert [asked for asked in result["asked"] if asked[1].split(".")[0] == "xai_core"] == []
    assert result["loaded"] == []


def test_the_refusal_catches_a_library_module_that_imports_streamlit():
    """The check above can fail: a module that imports Streamlit (here a snippet run as one of
    xai_core's modules) does not import, and the attempt is traced to it."""
    code = IMPORT_ALL.replace(
        "import xai_core\n",
        "import xai_core, types\n"
        "module = types.ModuleType('xai_core.probe')\n"
        "sys.modules['xai_core.probe'] = module\n"
        "try:\n"
        "    exec('import streamlit', module.__dict__)\n"
        "except ImportError as exc:\n"
        "    Refuse.asked.append(['caught', str(exc)])\n",
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(APP_ONLY), "[]"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["asked"][0] == ["streamlit", "xai_core.probe"]
    assert result["asked"][1][0] == "caught" and "refused by the layer test" in result["asked"][1][1]


def test_no_library_source_names_streamlit_or_the_app():
    """Imports inside functions run only when called: read every file of xai_core for them."""
    found = []
    for path in sorted((ROOT / "xai_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            found += [f"{path.relative_to(ROOT)}:{node.lineno} {m}" for m in modules if m.split(".")[0] in APP_ONLY]
    assert found == []


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with this checkout's contracts, on the packages found in ``root``."""
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]
    options = ["--config", str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(command + options, cwd=root, env=env, capture_output=True, text=True, timeout=600)


def test_the_import_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "7 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    "module, late_import, broken",
    [
        ("xai_core/models/base.py", "from ..methods.machinery import registry", "Models know nothing of the methods"),
        ("xai_core/methods/cam.py", "from . import gradients", "the method modules stand alone"),
        ("xai_core/render.py", "import streamlit", "imports neither Streamlit nor the app"),
        ("xai_core/models/backbones.py", "from . import checkpoint", "No import cycle anywhere in xai_core"),
    ],
)
def test_an_import_inside_a_function_breaks_the_contracts(tmp_path, module, late_import, broken):
    """A copy of the packages with one import, inside a function, that crosses a contract."""
    for package in ("xai_core", "workbench"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "samples"))
    with open(tmp_path / module, "a") as file:
        file.write(f"\n\ndef _late():\n    {late_import}\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert broken in done.stdout and "BROKEN" in done.stdout
