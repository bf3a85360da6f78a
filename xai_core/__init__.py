"""xai_core: explain PyTorch video classifiers and regressors.

import xai_core
model = xai_core.load_model("cnn_transformer-sides")
clip = xai_core.load_video("shapes:7", model=model)
expl = xai_core.explain(model, clip, "gradcam")

The names below are imported when first used (PEP 562), so that ``import xai_core`` (and the
command line's help) does not pay for torch; submodules (``xai_core.video``, ...) load the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "explain": ".api",
    "predict": ".api",
    "plan": ".api",
    "Explanation": ".explanation",
    "Target": ".explanation",
    "MethodError": ".methods.machinery.registry",
    "list_methods": ".methods.machinery.registry",
    "method_specs": ".methods.machinery.registry",
    "InputSpec": ".models.base",
    "ModelError": ".models.base",
    "VideoModel": ".models.base",
    "load_model": ".models.zoo",
    "zoo_names": ".models.zoo",
    "RunStore": ".runs",
    "Clip": ".video",
    "VideoError": ".video",
    "load_video": ".video",
}

if TYPE_CHECKING:
    from .api import explain, plan, predict
    from .explanation import Explanation, Target
    from .methods.machinery.registry import MethodError, list_methods, method_specs
    from .models.base import InputSpec, ModelError, VideoModel
    from .models.zoo import load_model, zoo_names
    from .runs import RunStore
    from .video import Clip, VideoError, load_video


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), submodules=True)

__all__ = [
    "Clip",
    "Explanation",
    "InputSpec",
    "MethodError",
    "ModelError",
    "RunStore",
    "Target",
    "VideoError",
    "VideoModel",
    "explain",
    "list_methods",
    "load_model",
    "load_video",
    "method_specs",
    "plan",
    "predict",
    "zoo_names",
    "__version__",
]
