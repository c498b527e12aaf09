"""Acceptance: a run killed with SIGKILL mid-epoch and resumed ends exactly like one never interrupted."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("kill_worker.py")
STEPS_PER_EPOCH = 60  # kill_worker: 480 samples / batch 8


def run_worker(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(WORKER), str(run_dir), *extra], capture_output=True, text=True,
                          timeout=300)


def wait_for_mid_epoch_state(process: subprocess.Popen, run_dir: Path) -> str:
    """Poll until a step checkpoint of the second epoch exists; return its name."""
    pattern = re.compile(r"ckpt-(\d{9})-0\.")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, "the worker ended before it could be killed"
        folder = run_dir / "state"
        names = os.listdir(folder) if folder.is_dir() else []
        for name in names:
            match = pattern.match(name)
            if match and STEPS_PER_EPOCH < int(match.group(1)) < 2 * STEPS_PER_EPOCH - 10:
                return name
        time.sleep(0.002)  # polling interval, not a wait for the worker
    raise AssertionError("no mid-epoch checkpoint appeared")


@pytest.mark.slow
@pytest.mark.parametrize("flags", [(), ("--compile",)], ids=["eager", "compiled"])
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path, flags):
    if flags and shutil.which(os.environ.get("CXX") or "g++") is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    reference = tmp_path / "reference"
    done = run_worker(reference, *flags)
    assert done.returncode == 0, done.stderr

    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, str(WORKER), str(killed), *flags], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    wait_for_mid_epoch_state(process, killed)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "weights.safetensors").exists()  # it really died before the end

    resumed = run_worker(killed, "--resume", *flags)
    assert resumed.returncode == 0, resumed.stderr

    assert (killed / "history.csv").read_text() == (reference / "history.csv").read_text()
    a, b = load_file(reference / "weights.safetensors"), load_file(killed / "weights.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert len((reference / "history.csv").read_text().splitlines()) == 4  # header + 3 epochs
