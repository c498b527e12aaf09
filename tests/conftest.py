"""Shared fixtures: tiny data made by the tests, and the optional real data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the checkout (or $CNNLAB_SHARED_DATA), if present."""
    candidate = Path(os.environ.get("CNNLAB_SHARED_DATA", REPO.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is absent")
    return path


@pytest.fixture(autouse=True)
def _isolated_data_root(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests never read or write the user's ~/.cache/cnnlab.
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path_factory.mktemp("cnnlab-data")))


@pytest.fixture
def refused(capsys: pytest.CaptureFixture[str]):
    """``refused(*argv)``: run the CLI, expect exit 2 and exactly one ``error: ... Fix: ...`` line on
    stderr, no traceback anywhere and no exception's repr; return the line."""
    from cnnlab.cli import main

    def run(*argv: object) -> str:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, captured
        assert len(lines) == 1, captured.err
        assert lines[0].startswith("error: ") and " Fix: " in lines[0], lines[0]
        assert "Traceback" not in captured.err + captured.out and "Error(" not in captured.err, captured
        return lines[0]

    return run
