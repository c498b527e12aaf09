"""Bundles: a saved model is a folder with ``weights.safetensors`` and ``model.json``.

``model.json`` holds everything needed to rebuild and use the model, and the
sha256 of the weights file, so a corrupted or half-copied bundle is refused::

    {"format": "cnnlab-bundle", "format_version": 1,
     "architecture": {"kind": "spec", "spec": {...}}          # or
                     {"kind": "zoo", "config": {"name": "resnet20", ...}},
     "task": "classification" | "binary" | "regression",
     "classes": [...], "input_shape": [H, W, C], "preprocessing": {...},
     "output": {"activation": "softmax", "in_model": true, "units": 10},
     "metrics": {...}, "versions": {...}, "weights_sha256": "..."}

Loading never unpickles: safetensors for tensors, JSON for the rest.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.data.remote import sha256_of as sha256_file  # one file hash for downloads and bundles
from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_path, atomic_write_text, path_kind

WEIGHTS = "weights.safetensors"
META = "model.json"
FORMAT = "cnnlab-bundle"
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    """The versions recorded in ``model.json``: cnnlab, torch and Python."""
    from cnnlab import __version__

    return {"cnnlab": __version__, "torch": torch.__version__, "python": platform.python_version()}




def weights_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as contiguous CPU tensors that share no storage (what safetensors needs)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def save_bundle(folder: str | Path, model: nn.Module, meta: Mapping[str, Any]) -> Path:
    """Write ``model``'s weights and ``meta`` (plus format, versions, checksum) into ``folder``.

    The weights are written first and ``model.json`` last, each atomically, so
    ``model.json``'s checksum always names a complete weights file.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    weights_path = folder / WEIGHTS
    with atomic_path(weights_path) as tmp:
        save_file(weights_of(model), str(tmp))
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta, "versions": versions(),
            "weights_sha256": sha256_file(weights_path)}
    atomic_write_text(folder / META, json.dumps(full, indent=2, sort_keys=False) + "\n")
    return folder


def read_meta(folder: str | Path) -> dict[str, Any]:
    """Read and check ``model.json`` of a bundle (or of a run folder holding one)."""
    folder = Path(folder)
    meta_path = folder / META
    if path_kind(meta_path, where=str(folder)) != "file":
        best, states = folder / "best", folder / "state"
        if path_kind(best / META) == "file" or path_kind(states) == "dir":  # a run stopped before its final bundle
            fix = (f"use its best checkpoint ({best}) or " if path_kind(best / META) == "file" else "") + \
                f"finish it: cnnlab train --resume {folder}"
            raise CnnlabError(f"the run has no final model ({META}): it did not finish", where=str(folder), fix=fix)
        raise CnnlabError(f"no {META} here", where=str(folder),
                          fix="give a bundle folder (weights.safetensors + model.json) or a run folder")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise CnnlabError(f"{META} is not valid JSON ({reason})", where=str(meta_path),
                          fix="restore the bundle from its run folder") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CnnlabError(f"{META} is not a cnnlab bundle description", where=str(meta_path),
                          fix="give a folder written by cnnlab")
    check_meta(meta, str(meta_path))
    return meta


def check_meta(meta: Mapping[str, Any], where: str = META) -> None:
    """Refuse a ``model.json`` whose entries predict and evaluate rely on are missing or of the wrong type."""

    def bad(field: str, wanted: str) -> CnnlabError:
        return CnnlabError(f"field {field!r} must be {wanted}, got {meta.get(field)!r}", where=where,
                           fix="restore model.json from its run folder (or re-save the bundle)")

    if not isinstance(meta.get("architecture", {}), dict):
        raise bad("architecture", "a mapping {kind: spec | zoo, ...}")
    if meta.get("task", "classification") not in ("classification", "binary", "regression"):
        raise bad("task", "classification, binary or regression")
    classes = meta.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise bad("classes", "a list of class names")
    if not isinstance(meta.get("output", {}), dict):
        raise bad("output", "a mapping {activation, in_model, units}")
    if meta.get("preprocessing") is not None:  # absent in a bundle saved from the API without it
        from cnnlab.data.loader import check_preprocessing

        check_preprocessing(meta["preprocessing"], where=f"{where}: field 'preprocessing'")


def load_weights(folder: str | Path, meta: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The bundle's tensors, after checking the file against ``weights_sha256``."""
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS
    if path_kind(path) != "file":
        raise CnnlabError(f"{WEIGHTS} is missing", where=str(path), fix="copy the whole bundle folder")
    expected = meta.get("weights_sha256")
    if expected and sha256_file(path) != expected:
        raise CnnlabError(f"{WEIGHTS} does not match the checksum in {META} (corrupted or half-copied)",
                          where=str(path), fix="copy the bundle again, or re-save it from its run")
    return load_file(str(path))


def build_architecture(arch: Mapping[str, Any]) -> nn.Module:
    """Rebuild an untrained module from ``model.json``'s ``architecture`` entry."""
    kind = arch.get("kind")
    if kind == "spec" and isinstance(arch.get("spec"), (dict, list)):
        from cnnlab.spec import build

        return build(arch["spec"])
    if kind == "zoo" and isinstance(arch.get("config"), dict) and isinstance(arch["config"].get("name"), str):
        from cnnlab.models import create

        try:
            return create(**arch["config"])
        except TypeError as error:  # an option the model does not take
            raise CnnlabError(f"the zoo model's options do not fit it ({error})", where=META,
                              fix="restore model.json from its run folder") from None
    raise CnnlabError(f"architecture kind {kind!r} cannot be rebuilt from model.json", where=META,
                      fix="pass the module yourself: load_bundle(path, model=MyModule())")


def load_bundle(folder: str | Path, model: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild (or fill ``model``) from a bundle; returns the module in eval mode and its metadata."""
    meta = read_meta(folder)
    tensors = load_weights(folder, meta)
    module = model if model is not None else build_architecture(meta.get("architecture") or {})
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise CnnlabError(f"the weights do not fit the model ({first})", where=str(Path(folder) / WEIGHTS),
                          fix="load the bundle with the architecture it was saved from") from None
    # Channels-last weights, as the trainer trains: oneDNN then runs the convolutions and
    # poolings in its NHWC kernels, 1.6-3.4x faster at batch 64 for the MNIST nets of the
    # zoo and ~15% for resnet20 on a 2-core CPU (two microbenchmarks; the box is noisy).
    module = module.to(memory_format=torch.channels_last)
    return module.eval(), meta
