"""Explanations: class activation maps, Grad-CAM and Captum attributions, feature maps, filters.

``explain(model, images, method="gradcam", target=None, layer=None) -> Explanation``;
``cam``, ``gradcam``, ``gradcam_pp`` with the same arguments; ``overlay`` and ``to_png_bytes``
to show a map; ``feature_maps`` / ``filters`` and the grid helpers for what a layer sees and
what it learned. The formulas are in :mod:`cnnlab.explain.methods`.
"""

from __future__ import annotations

from cnnlab.explain.core import Explanation
from cnnlab.explain.methods import METHODS, cam, explain, gradcam, gradcam_pp
from cnnlab.explain.visual import (
    feature_grid,
    feature_maps,
    filter_grid,
    filters,
    overlay,
    save_explanation_png,
    save_png,
    to_png_bytes,
)

__all__ = [
    "METHODS",
    "Explanation",
    "cam",
    "explain",
    "feature_grid",
    "feature_maps",
    "filter_grid",
    "filters",
    "gradcam",
    "gradcam_pp",
    "overlay",
    "save_explanation_png",
    "save_png",
    "to_png_bytes",
]
