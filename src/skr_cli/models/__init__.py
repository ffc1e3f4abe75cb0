"""Video backbones: one registry entry and one ``conf/model/<name>.yaml`` per builder call.

Importing this package registers every builder in ``MODELS`` (the builders live in the modules
``i3d``, ``pytorchvideo_resnet`` and ``torchvision_video``).
"""

from skr_cli.models import i3d, pytorchvideo_resnet, torchvision_video
from skr_cli.models.i3d import InceptionI3d
from skr_cli.models.registry import MODELS, register_model
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
