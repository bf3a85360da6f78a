"""A user's model code spread over several files (issue 18, point 2): a file with the modules
beside it, a module of a package with relative imports, a package folder; read afresh on every
load; errors in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import xai_core
from xai_core.models.base import ModelError
from xai_core.models.user_code import build_factory_net, parse_factory

BLOCK = """
from torch import nn


class Block(nn.Module):
    def __init__(self, channels={channels}):
        super().__init__()
        self.conv = nn.Conv3d(3, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(x).relu().mean((2, 3, 4))
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_file_imports_the_modules_beside_it_at_import_and_in_its_factory(tmp_path):
    write(tmp_path / "layers.py", BLOCK.format(channels=4))
    write(tmp_path / "heads.py", "from torch import nn\n\ndef head(n, classes):\n    return nn.Linear(n, classes)\n")
    net = write(
        tmp_path / "net.py",
        "from torch import nn\nfrom layers import Block\n\n\n"
        "def build(classes=3):\n    from heads import head  # imported only when the factory runs\n"
        "    return nn.Sequential(Block(), head(4, classes))\n",
    )
    before = list(sys.path)
    built = build_factory_net(net, "build", {"classes": 5})
    assert built(torch.zeros(1, 3, 4, 8, 8)).shape == (1, 5)
    assert sys.path == before  # the folder was importable only while the code ran
    model = xai_core.load_model(f"{net}:build", frames=4, height=16, width=16, layout="BCTHW", config={"classes": 3})
    assert (
        model.net is not None and len(xai_core.predict(model, torch.rand(4, 16, 16, 3).numpy())["probabilities"]) == 3
    )


def test_a_module_of_a_package_with_relative_imports_and_the_package_itself(tmp_path):
    package = tmp_path / "mypkg"
    write(package / "__init__.py", "from .models import build\n")
    write(package / "layers.py", BLOCK.format(channels=6))
    write(
        package / "models.py",
        "from torch import nn\n\nfrom .layers import Block\n\n\ndef build():\n    return Block()\n",
    )
    assert parse_factory(f"{package}:build") == (package, "build")
    assert parse_factory(f"{package / 'models.py'}:build") == (package / "models.py", "build")
    assert parse_factory("shapes:7") is None and parse_factory(f"{tmp_path / 'nothing'}:build") is None
    for code in (package / "models.py", package):
        net = build_factory_net(code, "build", {})
        assert net(torch.zeros(1, 3, 2, 4, 4)).shape == (1, 6)


def test_edited_code_is_read_again_on_the_next_load(tmp_path):
    layers = write(tmp_path / "layers.py", BLOCK.format(channels=4))
    net = write(tmp_path / "net.py", "from layers import Block\n\ndef build():\n    return Block()\n")
    assert build_factory_net(net, "build", {})(torch.zeros(1, 3, 2, 4, 4)).shape == (1, 4)
    layers.write_text(BLOCK.format(channels=7))
    assert build_factory_net(net, "build", {})(torch.zeros(1, 3, 2, 4, 4)).shape == (1, 7)


def test_user_code_errors_are_one_line(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(ModelError, match="is a folder without __init__.py: name a .py file in it"):
        build_factory_net(folder, "build", {})
    net = write(tmp_path / "net.py", "from missing_sibling import Block\n")
    with pytest.raises(
        ModelError, match="importing net.py failed: ModuleNotFoundError: No module named 'missing_sibling'"
    ):
        build_factory_net(net, "build", {})
    net = write(tmp_path / "net2.py", "def make():\n    pass\n")
    with pytest.raises(ModelError, match="net2.py has no 'build'; it defines: make"):
        build_factory_net(net, "build", {})


def test_relative_paths_installed_modules_and_sys_path_survive_a_load(tmp_path, monkeypatch):
    package = tmp_path / "proj"
    write(package / "__init__.py", "")
    write(package / "layers.py", BLOCK.format(channels=3))
    write(
        package / "net.py",
        "import sys\nsys.path.append('/somewhere/else')\nfrom .layers import Block\n\n"
        "def build():\n    return Block()\n",
    )
    monkeypatch.chdir(package)  # run from inside the package: a relative path, a folder with __init__.py
    before, writes = list(sys.path), sys.dont_write_bytecode
    path, name = parse_factory("net.py:build")
    assert path.is_absolute()
    assert build_factory_net(path, name, {})(torch.zeros(1, 3, 2, 4, 4)).shape == (1, 3)
    assert sys.path == before and sys.dont_write_bytecode == writes  # what the user's code added is gone too
    assert "torch" in sys.modules and "xai_core.models.user_code" in sys.modules  # nothing of ours or installed dropped
    assert not list(tmp_path.rglob("__pycache__"))


def test_two_folders_with_a_layers_module_do_not_meet(tmp_path):
    for folder, channels in (("a", 2), ("b", 5)):
        write(tmp_path / folder / "layers.py", BLOCK.format(channels=channels))
        write(tmp_path / folder / "net.py", "from layers import Block\n\ndef build():\n    return Block()\n")
    shapes = [build_factory_net(tmp_path / f / "net.py", "build", {})(torch.zeros(1, 3, 2, 4, 4)).shape for f in "aba"]
    assert shapes == [(1, 2), (1, 5), (1, 2)]
