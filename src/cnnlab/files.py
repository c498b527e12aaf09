"""Paths users give, checked once; atomic file writes.

Every file cnnlab writes (images, bundles, checkpoints, caches, reports) goes
through here: write to a temporary file in the same folder, fsync, rename. A
reader sees the old file or the new one, never half of one.

Every path a user gives is looked at through :func:`path_kind` (never raises
for a missing path, and turns what the file system refuses, a name too long, a
NUL byte, no permission, a symlink loop, into one :class:`CnnlabError`),
:func:`existing` (a file or folder that must be there, of the right kind) and
:func:`check_output` (where a file or folder will be written: not a folder
where a file goes or the reverse, no file in the way of a folder, a writable
folder). :func:`atomic_path` checks its target the same way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from cnnlab.errors import CnnlabError

Kind = Literal["file", "dir", "missing", "other"]
_MISSING = {errno.ENOENT, errno.ENOTDIR}


def _refused(path: object, error: OSError | ValueError, where: str | None) -> CnnlabError:
    where = where or str(path)
    if isinstance(error, ValueError):  # os.stat: "embedded null byte"
        return CnnlabError("is not a valid path (it holds a NUL character)", where=where, fix="check the path")
    if error.errno == errno.ENAMETOOLONG:
        return CnnlabError(f"the name is too long for the file system ({len(str(path))} characters)", where=where,
                           fix="use a shorter path (each folder or file name at most 255 bytes)")
    if error.errno in (errno.EACCES, errno.EPERM):
        return CnnlabError("permission denied", where=where, fix="check the path's permissions, or use another path")
    if error.errno == errno.ELOOP:
        return CnnlabError("is a loop of symbolic links", where=where, fix="point the link at a real file or folder")
    return CnnlabError(f"cannot use this path ({error.strerror or error})", where=where, fix="check the path")


def path_kind(path: str | os.PathLike[str], *, where: str | None = None) -> Kind:
    """``"file"``, ``"dir"``, ``"missing"`` or ``"other"`` (a device, a socket...) for ``path``.

    A missing path (or one below a file) is ``"missing"``; anything else the file
    system refuses is a :class:`CnnlabError` naming ``where`` (default: the path).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno in _MISSING:
            return "missing"
        raise _refused(path, error, where) from None
    except ValueError as error:
        raise _refused(path, error, where) from None
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def is_file(path: str | os.PathLike[str], *, where: str | None = None) -> bool:
    """``Path.is_file`` that names the path instead of raising OSError (see :func:`path_kind`)."""
    return path_kind(path, where=where) == "file"


def is_dir(path: str | os.PathLike[str], *, where: str | None = None) -> bool:
    """``Path.is_dir`` that names the path instead of raising OSError (see :func:`path_kind`)."""
    return path_kind(path, where=where) == "dir"


def exists(path: str | os.PathLike[str], *, where: str | None = None) -> bool:
    """``Path.exists`` that names the path instead of raising OSError (see :func:`path_kind`)."""
    return path_kind(path, where=where) != "missing"


def existing(path: str | os.PathLike[str], kind: Literal["file", "dir", "any"] = "any", *, what: str = "",
             where: str | None = None, fix: str | None = None) -> Path:
    """``path`` as a Path when it exists and is of ``kind``; else one clear error.

    ``what`` names the thing in the message (``"experiment file"``), ``fix`` says
    what to give instead.
    """
    found = path_kind(path, where=where)
    where = where or str(path)
    noun = what or {"file": "file", "dir": "folder", "any": "file or folder"}[kind]
    if found == "missing":
        raise CnnlabError(f"no such {noun}", where=where, fix=fix or "check the path")
    if kind == "file" and found != "file":
        raise CnnlabError(f"is a {'folder' if found == 'dir' else 'special file'}, not a {noun}", where=where,
                          fix=fix or "give the path of a file")
    if kind == "dir" and found != "dir":
        raise CnnlabError(f"is a file, not a {noun}", where=where, fix=fix or "give the path of a folder")
    return Path(path)


def writable_folder(folder: str | os.PathLike[str]) -> bool:
    """Whether cnnlab may create files under ``folder``: its nearest existing ancestor is a
    folder that is writable AND not marked read-only. The mode check matters for root, to
    whom os.access says yes even on a folder its owner made read-only (a shared data set)."""
    probe = Path(folder)
    while True:
        try:
            kind = path_kind(probe)
        except CnnlabError:
            return False
        if kind != "missing":
            break
        if probe.parent == probe:
            return False
        probe = probe.parent
    if kind != "dir":
        return False
    try:
        read_only = not (probe.stat().st_mode & stat.S_IWUSR)
    except OSError:
        return False
    return not read_only and os.access(probe, os.W_OK)


def check_output(path: str | os.PathLike[str], kind: Literal["file", "dir"] = "file", *,
                 where: str | None = None, example: str = "out.png") -> Path:
    """Refuse, with one clear error, a place cnnlab cannot write ``kind`` to.

    A folder where a file goes (or a file where a folder goes), a file in the way
    of a folder to create, or no permission to write there. Creates nothing.
    ``example``: the file name the fix suggests inside a folder given for a file.
    Callers that work long before writing check first, so a bad path costs no work.
    """
    target = Path(path)
    where = where or str(path)
    found = path_kind(target, where=where)
    if found == "dir" and kind == "file":
        raise CnnlabError("is a folder; a file is written here", where=where,
                          fix=f"give a file name, e.g. {shorten_path(target / example)}")
    if found in ("file", "other") and kind == "dir":
        raise CnnlabError("is a file; a folder is written here", where=where, fix="give the path of a folder")
    probe = target if found == "dir" else target.parent
    while path_kind(probe, where=where) == "missing" and probe.parent != probe:
        probe = probe.parent
    if path_kind(probe, where=where) != "dir":
        raise CnnlabError(f"{shorten_path(probe)} is a file, so no folder can be made inside it", where=where,
                          fix="give a path under a folder")
    if not writable_folder(probe):
        raise CnnlabError(f"the folder {shorten_path(probe)} is not writable", where=where,
                          fix="give a path in a folder you can write to")
    return target


def shorten_path(path: str | os.PathLike[str], limit: int = 120) -> str:
    """A path for a message: its end, where the name is, when it is long."""
    text = str(path)
    return text if len(text) <= limit else "..." + text[-limit:]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    For writers that want a file name (``PIL.Image.save``, ``safetensors.save_file``,
    ``matplotlib.savefig``). On an exception the temporary file is removed and
    ``path`` is left as it was.
    """
    target = check_output(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name[:32]}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise _refused(target, error, str(path)) from None
    os.close(fd)
    # mkstemp makes the file 0600; a written file should get the usual 0666 & ~umask.
    os.chmod(tmp_name, 0o666 & ~_umask())
    tmp = Path(tmp_name)
    try:
        yield tmp
        try:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except OSError as error:  # disk full, or the target became a folder meanwhile
            raise CnnlabError(f"cannot write the file ({error.strerror or error})", where=str(path),
                              fix="check the free space and that the path is a file you may write") from None
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the directory entry is flushed.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
