"""xai_core: explain PyTorch video classifiers and regressors.

import xai_core
model = xai_core.load_model("cnn_transformer-sides")
clip = xai_core.load_video("shapes:7", model=model)
expl = xai_core.explain(model, clip, "gradcam")
"""

from ._version import __version__
from .api import explain, predict
from .explanation import Explanation, Target
from .methods.machinery.registry import MethodError, list_methods, method_specs
from .models.base import InputSpec, ModelError, VideoModel
from .models.zoo import load_model, zoo_names
from .video import Clip, VideoError, load_video

__all__ = [
    "Clip",
    "Explanation",
    "InputSpec",
    "MethodError",
    "ModelError",
    "Target",
    "VideoError",
    "VideoModel",
    "explain",
    "list_methods",
    "load_model",
    "load_video",
    "method_specs",
    "predict",
    "zoo_names",
    "__version__",
]
