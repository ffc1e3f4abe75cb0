"""Video backbones: one registry entry and one ``conf/model/<name>.yaml`` per builder call.

The builders live in the modules ``i3d``, ``pytorchvideo_resnet`` and ``torchvision_video``;
importing one registers its builders in ``MODELS``. ``torchvision_video`` is imported when it or
``MODELS`` is first asked for (``skr_cli.models.MODELS``): a run of another model need not pay
for importing torchvision (see ``skr_cli.data.transforms``).
"""

import importlib
from typing import Any

from skr_cli.models import i3d, pytorchvideo_resnet
from skr_cli.models.i3d import InceptionI3d
from skr_cli.models.registry import MODELS as _REGISTERED
from skr_cli.models.registry import register_model
from skr_cli.models.weights import WeightsError, load_weights

__all__ = [
    "MODELS",
    "InceptionI3d",
    "WeightsError",
    "i3d",
    "load_weights",
    "pytorchvideo_resnet",
    "register_model",
    "torchvision_video",
]


def __getattr__(name: str) -> Any:
    """``MODELS`` with every builder registered, and ``torchvision_video``, on first use."""
    if name in ("MODELS", "torchvision_video"):
        module = importlib.import_module("skr_cli.models.torchvision_video")  # registers them
        return {"MODELS": _REGISTERED, "torchvision_video": module}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
