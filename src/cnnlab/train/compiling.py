"""``torch.compile`` for the trainer: where it runs, where its cache lives, and the fallback.

Measured on a 2-core AVX-512 CPU (benchmarks/RESULTS.md, issue 20): Inductor's C++
kernels for the fused ReLU / pooling / batch-norm steps of a *training* step (forward and
backward) ran slower than eager PyTorch's oneDNN + ATen kernels, and compiling took
~50-70 s for mnist_3conv, so ``compile`` stays off by default on the CPU; ``--compile``
still forces it. Convolutions stay oneDNN's either way (Inductor calls the same
``aten.convolution`` in training), which is where ~70 % of a step goes.

On the CPU Inductor needs a C++ compiler (``$CXX``, else ``g++``). Where none exists
the trainer trains uncompiled and says so in one line, instead of failing at the
first step with a long compiler traceback.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn


def cpp_compiler() -> str | None:
    """The C++ compiler Inductor builds CPU kernels with (``$CXX``, else ``g++`` /
    ``clang++`` on macOS), as a full path; None where it is not installed."""
    name = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
    return shutil.which(name)


def inductor_cache_dir() -> Path:
    """Inductor's kernel and FX-graph cache: ``cache/inductor`` under the cnnlab cache
    root (``$CNNLAB_CACHE``, else the data root's cache folder), so a second run of the
    same architecture reuses the compiled kernels. ``$TORCHINDUCTOR_CACHE_DIR`` wins (and
    so does Inductor's own ``/tmp/torchinductor_<user>`` where the process imported
    ``torch._inductor`` before the trainer was built: its import fixes the variable)."""
    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if env:
        return Path(env)
    from cnnlab.data.roots import cache_dir

    return cache_dir(None) / "inductor"


def compile_model(model: nn.Module, device: torch.device, say: Callable[[str], None] | None = None) -> nn.Module:
    """``torch.compile(model)``, or ``model`` itself (with one line to ``say``) on a CPU
    without a C++ compiler."""
    # Before anything of Inductor is imported: its import fixes $TORCHINDUCTOR_CACHE_DIR to /tmp/... otherwise.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
    if device.type == "cpu":
        compiler = cpp_compiler()
        if compiler is None:
            if say is not None:
                wanted = os.environ.get("CXX") or "g++"
                say(f"compile: no C++ compiler ({wanted}) found, so torch.compile cannot build CPU kernels; "
                    "training uncompiled (install g++ or set $CXX to fix)")
            return model
        from torch._inductor import config as inductor_config

        inductor_config.cpp.cxx = (None, compiler)  # the one found above, even if $CXX changed after import
    return torch.compile(model)
