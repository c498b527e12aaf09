"""A bad --out is refused in one line before any work is done (reports take minutes on large runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

import cnnlab.report.build as build
from cnnlab.cli import main


def test_report_out_a_folder_is_refused_before_building(tmp_path: Path, monkeypatch, capsys) -> None:
    def never(run_dir):
        raise AssertionError("the report was built before its --out was checked")

    monkeypatch.setattr(build, "build_context", never)
    assert main(["report", str(tmp_path), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {tmp_path}: is a folder" in err
    assert f"e.g. {tmp_path / 'report.html'}" in err  # the suggested name is an HTML page, not out.png


def test_compare_out_a_folder_is_refused_before_the_table(tmp_path: Path, monkeypatch, capsys) -> None:
    import cnnlab.report.compare as compare

    monkeypatch.setattr(compare, "comparison", lambda dirs: {"names": ["a", "b"]})
    monkeypatch.setattr(compare, "print_table", lambda *a: pytest.fail("table printed before --out was checked"))
    assert main(["compare", "a", "b", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"e.g. {tmp_path / 'compare.html'}" in err


def test_compare_the_same_run_twice_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["compare", str(tmp_path), str(tmp_path / "." ), "-o", str(tmp_path / "c.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is given twice" in err and not (tmp_path / "c.html").exists()

    from cnnlab.errors import CnnlabError
    from cnnlab.report.compare import comparison

    with pytest.raises(CnnlabError, match="given twice"):
        comparison(["same", "same"])  # one string object twice


def test_damaged_run_files_are_one_line(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_bytes(b"\xff\xfe\x00 data")
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n")
    assert main(["report", str(run), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.yaml cannot be read (not UTF-8 text)" in err
    (run / "config.yaml").write_text("data: {source: shapes}\n")
    (run / "history.csv").write_bytes(b"\xff\xfeepoch,loss\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yaml").write_text("data: {source: shapes}\n")
    (other / "history.csv").write_text("epoch,loss\n0,1.0\n")
    for argv in (["report", str(run), "-o", str(tmp_path / "r.html")],
                 ["compare", str(other), str(run), "-o", str(tmp_path / "c.html")]):
        assert main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all("history.csv cannot be read" in line for line in lines)
