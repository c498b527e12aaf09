from __future__ import annotations

import subprocess
import sys

import cnnlab
from cnnlab.cli import main


def test_version_prints_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cnnlab {cnnlab.__version__}"


def test_unknown_command_exits_2_without_traceback():
    done = subprocess.run([sys.executable, "-m", "cnnlab.cli", "no-such-command"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "no-such-command" in done.stderr
