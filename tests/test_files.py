from __future__ import annotations

import pytest

from cnnlab.files import atomic_path, atomic_write_text


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_written_files_get_the_umask_permissions_not_0600(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------ the one path check


def test_path_kind_names_what_the_file_system_refuses(tmp_path):
    from cnnlab.errors import CnnlabError
    from cnnlab.files import path_kind

    (tmp_path / "f").write_text("x")
    assert [path_kind(tmp_path), path_kind(tmp_path / "f"), path_kind(tmp_path / "nope"),
            path_kind(tmp_path / "f" / "below")] == ["dir", "file", "missing", "missing"]
    with pytest.raises(CnnlabError, match=r"the name is too long for the file system \(\d+ characters\)"):
        path_kind(tmp_path / ("x" * 300))
    with pytest.raises(CnnlabError, match="holds a NUL character"):
        path_kind("a\0b")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(CnnlabError, match="loop of symbolic links"):
        path_kind(tmp_path / "loop")


def test_existing_and_check_output_refuse_the_wrong_kind(tmp_path):
    from cnnlab.errors import CnnlabError
    from cnnlab.files import check_output, existing

    (tmp_path / "f").write_text("x")
    assert existing(tmp_path / "f", "file") == tmp_path / "f"
    with pytest.raises(CnnlabError, match=r": is a folder, not a spec file Fix: give a spec"):
        existing(tmp_path, "file", what="spec file", fix="give a spec")
    with pytest.raises(CnnlabError, match=r": is a file, not a folder"):
        existing(tmp_path / "f", "dir")
    with pytest.raises(CnnlabError, match=r": no such file or folder"):
        existing(tmp_path / "nope")
    assert check_output(tmp_path / "new" / "deeper" / "a.png") == tmp_path / "new" / "deeper" / "a.png"
    assert not (tmp_path / "new").exists()  # it checks, it creates nothing
    with pytest.raises(CnnlabError, match="is a folder; a file is written here"):
        check_output(tmp_path)
    with pytest.raises(CnnlabError, match="is a file; a folder is written here"):
        check_output(tmp_path / "f", "dir")
    with pytest.raises(CnnlabError, match=r"/f is a file, so no folder can be made inside it"):
        check_output(tmp_path / "f" / "sub" / "a.png")


def test_atomic_path_refuses_a_folder_target_an_unwritable_folder_and_a_file_parent(tmp_path):
    from cnnlab.errors import CnnlabError

    (tmp_path / "f").write_text("x")
    with pytest.raises(CnnlabError, match="is a folder; a file is written here"):
        atomic_write_text(tmp_path, "x")
    with pytest.raises(CnnlabError, match="is a file, so no folder can be made inside it"):
        atomic_write_text(tmp_path / "f" / "a.txt", "x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(CnnlabError, match=f"the folder {locked} is not writable"):
            atomic_write_text(locked / "a.txt", "x")
    finally:
        locked.chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "locked"] and list(locked.iterdir()) == []


def test_a_long_target_name_gets_a_temporary_name_that_fits(tmp_path):
    target = tmp_path / ("n" * 250)
    atomic_write_text(target, "ok")
    assert target.read_text() == "ok" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_messages_are_one_bounded_line():
    from cnnlab.errors import CnnlabError, check_seed, shorten

    assert shorten("a\n  b\tc") == "a b c"
    assert shorten("v" * 500, 10) == "vvvvvvvvvv... (500 characters)"
    error = CnnlabError("bad value " + "z" * 8000 + "\n- method gz: x", where="w" * 1000, fix="do this")
    text = str(error)
    assert "\n" not in text and len(text) < 700 and text.endswith(" Fix: do this")
    assert text.startswith("w" * 200 + "... (1000 characters): bad value zzz")
    assert check_seed(2**32 - 1) == 2**32 - 1
    for bad in (2**32, -1, True, 1.5, "3"):
        with pytest.raises(CnnlabError, match=r"seed: must be a whole number from 0 to 4294967295"):
            check_seed(bad)
