"""A CSV of ``path,target``: images with a class name or a number each.

- Paths are relative to the CSV's folder (absolute paths work too).
- A first row whose first field is ``path``, ``file``, ``filename``, ``image`` or
  ``image_path`` (any case) is a header and is skipped.
- ``task`` None: every target parses as a number -> regression (float32), else
  classification with the sorted distinct names as classes. Pass
  ``task="classification"`` for integer class labels such as ``0``, ``1``.
- A row naming a missing file is skipped with the reason ``missing file``; a
  malformed row is an error naming the line.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from cnnlab.data.cache import SourceFile, decode_files
from cnnlab.data.folders import DataWarning
from cnnlab.data.imageset import ImageSet
from cnnlab.errors import CnnlabError, shorten
from cnnlab.files import is_file

HEADER_NAMES = {"path", "file", "filename", "image", "image_path", "img"}
MISSING = "missing file"
MAX_FIELD = 4096  # the longest path Linux takes; a longer field is a broken line


def _rows(path: Path) -> list[tuple[int, str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise CnnlabError(f"cannot read the CSV ({error})", where=str(path), fix="give a UTF-8 text file") from None
    rows = []
    reader = csv.reader(text.splitlines())
    line = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # a field over the csv module's limit (128 KiB), a NUL byte ...
            raise CnnlabError(f"line {reader.line_num} is not a CSV row ({error})", where=str(path),
                              fix="write one short `path,target` pair per line") from None
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise CnnlabError(f"line {line} has {len(row)} field(s), expected path,target", where=str(path),
                              fix="write one `path,target` pair per line")
        if not rows and line == 1 and row[0].strip().lower() in HEADER_NAMES:
            continue
        if len(row[0]) > MAX_FIELD or len(row[1]) > MAX_FIELD:
            raise CnnlabError(f"line {line} has a field of {max(len(row[0]), len(row[1]))} characters", where=str(path),
                              fix=f"a path or target is at most {MAX_FIELD} characters: check the line")
        rows.append((line, row[0].strip(), row[1].strip()))
    if not rows:
        raise CnnlabError("has no rows", where=str(path), fix="write one `path,target` pair per line")
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_csv(
    path: Path,
    *,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    cache_folder: Path | None = None,
    task: str | None = None,
    progress: bool = False,
) -> ImageSet:
    """Load the images a CSV names, with their targets (see the module docstring)."""
    rows = _rows(path)
    if task is None:
        task = "regression" if all(_is_number(t) for _, _, t in rows) else "classification"
    if task not in ("classification", "regression"):
        raise CnnlabError(f"unknown task {task!r}", where="task", fix="use classification or regression")
    if task == "regression":
        bad = [(line, t) for line, _, t in rows if not _is_number(t)]
        if bad:
            raise CnnlabError(f"line {bad[0][0]}: target {shorten(repr(bad[0][1]))} is not a number", where=str(path),
                              fix="write a number in every target field, or train a classification")
    base = path.parent.resolve()
    files: list[SourceFile] = []
    targets: list[str] = []
    missing: list[tuple[str, str]] = []
    for _, name, target in rows:
        file = Path(name) if Path(name).is_absolute() else base / name
        try:
            usable = is_file(file)
        except CnnlabError:  # a name too long for the file system, a NUL byte: no such file either
            usable = False
        if not usable:
            missing.append((name, MISSING))
            continue
        files.append(SourceFile(name, path=file))
        targets.append(target)
    decoded = decode_files(files, image_size=image_size, channels=channels, cache_folder=cache_folder,
                           label=str(path.resolve()), progress=progress)
    skipped = sorted(missing + list(decoded.skipped))
    if not decoded.ok:
        raise CnnlabError(f"no valid image among the {len(rows)} rows", where=str(path),
                          fix="check the paths (relative to the CSV's folder) and the image files")
    if skipped:
        listing = "; ".join(f"{n} ({r})" for n, r in skipped[:10])
        warnings.warn(f"{path}: skipped {len(skipped)} row(s): {listing}", DataWarning, stacklevel=2)
    kept = [targets[i] for i in decoded.ok]
    if task == "regression":
        values = np.asarray([float(t) for t in kept], dtype=np.float32)
        classes = None
    else:
        classes = sorted(set(targets))
        index = {name: i for i, name in enumerate(classes)}
        values = np.asarray([index[t] for t in kept], dtype=np.int64)
    return ImageSet(
        data=decoded.images, targets=values, classes=classes, task=task,  # type: ignore[arg-type]
        files=[decoded.names[i] for i in decoded.ok], skipped=skipped, name=str(path),
        original_sizes=dict(decoded.sizes), original_modes=dict(decoded.modes),
    )
