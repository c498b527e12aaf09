"""cnnlab.models: the zoo.

``create(name, num_classes=..., input_shape=(H, W, C), include_top=True, **options)``
builds a registered network; ``names()`` lists them, ``info(name)`` gives the
default input size, Keras-style parameter count, reference and default
training recipe (``info(name).recipe``, or None), and
``load_pretrained(model, path)`` loads a torchvision-format state dict by name.
Every model is ``head(features(x))`` on (N, C, H, W) tensors, with
``model.input_shape``, ``model.num_features`` and ``model.config``
(``create(**model.config)`` rebuilds it).
"""

from cnnlab.models.base import ZooModel
from cnnlab.models.pretrained import LoadReport, load_pretrained, match_state_dict, read_state_dict
from cnnlab.models.registry import FAMILIES, ModelInfo, Recipe, TorchvisionMap, count, create, info, names, register

__all__ = [
    "FAMILIES",
    "LoadReport",
    "ModelInfo",
    "Recipe",
    "TorchvisionMap",
    "ZooModel",
    "count",
    "create",
    "info",
    "load_pretrained",
    "match_state_dict",
    "names",
    "read_state_dict",
    "register",
]
