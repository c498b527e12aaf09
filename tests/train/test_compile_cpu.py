"""Issue 20: the CPU training path: compile off is the plain loop bit for bit (on any x86 ISA),
``compile=True`` without a C++ compiler falls back in one line, Inductor's cache location."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.train.compiling import compile_model, cpp_compiler, inductor_cache_dir
from cnnlab.train.loader import TensorLoader
from cnnlab.train.losses import make_loss
from cnnlab.train.optim import make_optimizer
from cnnlab.train.trainer import Trainer

HERE = Path(__file__).resolve().parent


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 3))


def two_batches() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.randn(16, 3, 12, 12, generator=g), torch.randint(0, 3, (16,), generator=g)


def plain_two_steps() -> dict[str, torch.Tensor]:
    """The reference: the loop the trainer ran before issue 20, written out by hand
    (channels-last weights and batches, fp32, the same loss and foreach SGD)."""
    model = tiny_net().to(memory_format=torch.channels_last)
    loss_fn = make_loss("sparse_categorical_crossentropy")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, foreach=True)
    x, y = two_batches()
    model.train()
    for i in (0, 8):
        out = model(x[i:i + 8].contiguous(memory_format=torch.channels_last))
        loss = loss_fn(out.float(), y[i:i + 8])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def trainer_two_steps(**kw) -> tuple[Trainer, dict[str, torch.Tensor]]:
    model = tiny_net()
    opt = make_optimizer("sgd", model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, make_loss("sparse_categorical_crossentropy"), opt, metrics=["accuracy"], device="cpu",
                      verbose=0, **kw)
    x, y = two_batches()
    trainer.fit(TensorLoader(x, y, 8), epochs=1)
    return trainer, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def check_default_path_equals_plain_loop() -> Trainer:
    trainer, got = trainer_two_steps()  # the defaults: precision auto, compile off, channels-last
    want = plain_two_steps()
    assert got.keys() == want.keys()
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"not bit-for-bit equal to the plain loop: {different}"
    assert trainer.global_step == 2
    return trainer


def test_compile_off_is_the_plain_loop_bit_for_bit(monkeypatch):
    monkeypatch.setattr("cnnlab.train.trainer.auto_mixed_precision", lambda device: False)  # fp32, any CPU
    trainer = check_default_path_equals_plain_loop()
    assert trainer.forward_model is trainer.model and not trainer.mixed_precision


AVX2_CHILD = """
import sys
from pathlib import Path
import torch
sys.path.insert(0, {here!r})
import cnnlab.train.trainer as trainer_module
import test_compile_cpu as t
real = trainer_module.cpu_has_native_bf16
trainer_module.cpu_has_native_bf16 = lambda cpuinfo=Path({cpuinfo!r}): real(cpuinfo)
assert torch.backends.cpu.get_cpu_capability() == "AVX2", torch.backends.cpu.get_cpu_capability()
trainer = t.check_default_path_equals_plain_loop()
assert not trainer.mixed_precision and trainer.forward_model is trainer.model
print("default path ok on", torch.backends.cpu.get_cpu_capability())
"""


@pytest.mark.skipif(not torch.backends.cpu.get_cpu_capability().startswith("AVX"), reason="an x86 CPU test")
def test_default_path_needs_no_avx512(tmp_path):
    # A laptop without AVX-512 (nor AVX-512 BF16 / AMX): ATen's kernels and oneDNN capped at
    # AVX2, /proc/cpuinfo without the bf16 flags. precision auto must pick fp32 there, and the
    # default step must run and still equal the plain loop exactly.
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma f16c\n")
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", OMP_NUM_THREADS="1")
    code = AVX2_CHILD.format(here=str(HERE), cpuinfo=str(cpuinfo))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "default path ok on AVX2"


def fake_compiler(folder: Path) -> Path:
    path = folder / "my-g++"
    path.write_text("#!/bin/sh\necho fake 1.0\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_cpp_compiler_follows_cxx(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(fake_compiler(tmp_path)))
    assert cpp_compiler() == str(tmp_path / "my-g++")
    monkeypatch.setenv("CXX", str(tmp_path / "missing-g++"))
    assert cpp_compiler() is None


def test_compile_without_a_cxx_compiler_trains_uncompiled_and_says_so_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    monkeypatch.setattr("cnnlab.train.trainer.auto_mixed_precision", lambda device: False)
    model = tiny_net()
    opt = make_optimizer("sgd", model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, make_loss("sparse_categorical_crossentropy"), opt, metrics=["accuracy"], device="cpu",
                      verbose=1, compile=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "no C++ compiler" in lines[0] and "no-such-g++" in lines[0], lines
    assert trainer.forward_model is trainer.model  # not an OptimizedModule
    x, y = two_batches()
    trainer.verbose = 0
    trainer.fit(TensorLoader(x, y, 8), epochs=1)
    got = {k: v for k, v in trainer.model.state_dict().items()}
    want = plain_two_steps()
    assert all(torch.equal(got[k], want[k]) for k in want)  # it is exactly the uncompiled run


def test_compile_with_a_compiler_wraps_the_model(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(fake_compiler(tmp_path)))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    seen = []
    monkeypatch.setattr(torch, "compile", lambda model: seen.append(model) or "compiled")
    from torch._inductor import config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", inductor_config.cpp.cxx)
    model = tiny_net()
    assert compile_model(model, torch.device("cpu"), say=lambda text: pytest.fail(text)) == "compiled"
    assert seen == [model]
    assert inductor_config.cpp.cxx == (None, str(tmp_path / "my-g++"))
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache" / "inductor")  # undone by monkeypatch


def test_inductor_cache_lives_under_the_cnnlab_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "c"))
    assert inductor_cache_dir() == tmp_path / "c" / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert inductor_cache_dir() == tmp_path / "mine"
