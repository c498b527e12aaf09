from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnlab.data.cache as cache
from cnnlab.data import open_dataset


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every full decode the cache performs."""
    seen: list[str] = []
    real = cache.decode_with_info

    def counting(source, size, channels):
        seen.append(Path(source).name if not isinstance(source, bytes) else "<bytes>")
        return real(source, size, channels)

    monkeypatch.setattr(cache, "decode_with_info", counting)
    return seen


def test_second_load_decodes_nothing_and_maps_the_cache(tmp_path: Path, decodes: list[str], kit):
    kit.make_class_folder(tmp_path / "set", {"a": 3, "b": 2})
    first = open_dataset(str(tmp_path / "set"))
    assert len(decodes) == 5
    second = open_dataset(str(tmp_path / "set"))
    assert len(decodes) == 5  # no new decode
    assert isinstance(second.data, np.memmap)
    assert np.array_equal(first.images, second.images) and second.files == first.files
    cached = sorted(p.name for p in (Path(os.environ["CNNLAB_DATA"]) / "cache" / "images").iterdir())
    assert len(cached) == 2 and cached[0].endswith(".json") and cached[1].endswith(".npy")


def test_changed_added_or_removed_file_invalidates(tmp_path: Path, decodes: list[str], kit):
    root = kit.make_class_folder(tmp_path / "set", {"a": 2, "b": 2})
    open_dataset(str(root))
    assert len(decodes) == 4
    # Rewrite one file with other pixels: size/mtime change -> decode again, new pixels.
    target = root / "a" / "000.png"
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(target)
    os.utime(target, ns=(10**18, 10**18))
    changed = open_dataset(str(root))
    assert len(decodes) == 8
    assert (changed.images[0] == 7).all()
    open_dataset(str(root))
    assert len(decodes) == 8  # and stable again
    kit.save(root / "b" / "new.png", Image.fromarray(kit.noise(8, 8, 99)))
    assert len(open_dataset(str(root))) == 5 and len(decodes) == 13
    (root / "b" / "new.png").unlink()
    assert len(open_dataset(str(root))) == 4 and len(decodes) == 17
    # Only the newest entry of this folder stays in the cache.
    assert len(list((Path(os.environ["CNNLAB_DATA"]) / "cache" / "images").glob("*.npy"))) == 1


def test_other_preprocessing_is_another_entry(tmp_path: Path, decodes: list[str], kit):
    root = kit.make_class_folder(tmp_path / "set", {"a": 2})
    assert open_dataset(str(root), image_size=(4, 4)).image_shape == (4, 4, 3)
    assert open_dataset(str(root), image_size=(4, 4), channels=1).image_shape == (4, 4, 1)
    assert len(decodes) == 4
    open_dataset(str(root), image_size=(4, 4), channels=1)
    open_dataset(str(root), image_size=(4, 4))  # both entries stay cached
    assert len(decodes) == 4


def test_skipped_files_are_remembered_by_the_cache(odd_folder: Path, decodes: list[str], kit):
    with pytest.warns(UserWarning):
        first = open_dataset(str(odd_folder), image_size=(8, 8))
    count = len(decodes)
    with pytest.warns(UserWarning):
        second = open_dataset(str(odd_folder), image_size=(8, 8))
    assert len(decodes) == count
    assert second.skipped == first.skipped and dict(second.skipped) == kit.SKIPPED
    assert second.original_sizes == first.original_sizes and second.empty_classes == ["empty_class"]


def test_a_half_written_cache_entry_is_ignored(tmp_path: Path, decodes: list[str], kit):
    root = kit.make_class_folder(tmp_path / "set", {"a": 2})
    open_dataset(str(root))
    folder = Path(os.environ["CNNLAB_DATA"]) / "cache" / "images"
    npy = next(folder.glob("*.npy"))
    npy.write_bytes(npy.read_bytes()[:50])  # as if the disk lost the end
    again = open_dataset(str(root))
    assert len(decodes) == 4 and again.images.shape == (2, 8, 8, 3)
