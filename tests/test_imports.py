"""What importing the package costs: ``import xai_core`` loads its public names when they are
first used (PEP 562), so the command line and ``xai_core.video`` start without torch, and every
public name is still there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import xai_core

ROOT = Path(__file__).resolve().parents[1]


def loaded_after(statement: str) -> list[str]:
    """Torch, torchvision and xai_core's evaluation modules, as far as ``statement`` loads them in a
    fresh interpreter."""
    code = (
        f"import json, sys\n{statement}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision'}"
        " | {m for m in sys.modules if m.startswith('xai_core.evaluate')})))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


LIGHT = ["xai_core", "xai_core.cli", "xai_core.video", "xai_core.channels", "xai_core.render"]


@pytest.mark.parametrize("module", LIGHT)
def test_light_imports(module):
    assert loaded_after(f"import {module}") == []


def test_a_public_name_loads_what_it_needs():
    assert "torch" in loaded_after("import xai_core; xai_core.load_model")


def test_every_public_name_is_its_modules():
    from xai_core import api, explanation, runs, video
    from xai_core.methods.machinery import registry
    from xai_core.models import base, zoo

    homes = {"explain": api, "predict": api, "plan": api, "Explanation": explanation, "Target": explanation,
             "MethodError": registry, "list_methods": registry, "method_specs": registry, "InputSpec": base,
             "ModelError": base, "VideoModel": base, "load_model": zoo, "zoo_names": zoo, "Clip": video,
             "VideoError": video, "load_video": video, "RunStore": runs}  # fmt: skip
    assert set(xai_core.__all__) == {*homes, "__version__"}
    for name, module in homes.items():
        assert getattr(xai_core, name) is getattr(module, name), name
    assert set(xai_core.__all__) <= set(dir(xai_core))
    assert xai_core.video is video and xai_core.render.screen_angle  # submodules load on first use too
    with pytest.raises(AttributeError, match="has no attribute 'not_a_name'"):
        xai_core.not_a_name  # noqa: B018
