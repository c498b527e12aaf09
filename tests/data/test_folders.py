from __future__ import annotations

import io
import os
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import DataWarning, available_splits, open_dataset
from cnnlab.data.decode import decode_image
from cnnlab.errors import CnnlabError


def test_odd_folder_loads_exactly_the_good_files_and_skips_the_bad_with_reasons(odd_folder: Path, kit):
    before = kit.snapshot(odd_folder)
    with pytest.warns(DataWarning) as caught:
        imageset = open_dataset(str(odd_folder), image_size=(8, 8))
    assert kit.snapshot(odd_folder) == before  # nothing written, moved or deleted
    assert sorted(imageset.files) == kit.LOADED
    assert dict(imageset.skipped) == kit.SKIPPED
    assert imageset.classes == ["cats", "dogs", "empty_class"]
    assert imageset.empty_classes == ["empty_class"]
    assert imageset.class_counts() == {"cats": 13, "dogs": 2, "empty_class": 0}
    assert imageset.images.shape == (15, 8, 8, 3)
    messages = [str(w.message) for w in caught]
    assert any("'empty_class' has no valid image" in m for m in messages)
    assert any("skipped 5 file(s)" in m and "cats/bomb.png" in m for m in messages)
    assert imageset.original_modes == {"RGB": 8, "CMYK": 1, "L": 1, "LA": 1, "P": 2, "RGBA": 1, "I;16": 1}


def test_odd_folder_pixel_conversions(odd_folder: Path, kit):
    with pytest.warns(DataWarning):
        imageset = open_dataset(str(odd_folder), image_size=(8, 8))
    image = {name: imageset.images[i].astype(int) for i, name in enumerate(imageset.files)}
    # RGBA: transparent half composited over white, opaque half keeps its red.
    assert (image["cats/rgba.png"][:, :4] == 255).all()
    assert (image["cats/rgba.png"][:, 4:] == [200, 0, 0]).all()
    assert (image["cats/la.png"] == 255).all()  # fully transparent gray -> white
    assert (image["cats/gray.png"] == 100).all()  # gray -> RGB repeats the level
    assert (image["cats/sixteen.png"][:, :4] == 128).all() and (image["cats/sixteen.png"][:, 4:] == 255).all()
    red = image["cats/cmyk.jpg"].reshape(-1, 3).mean(0)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15
    webp = np.asarray(Image.open(odd_folder / "cats" / "image.webp").convert("RGB"))
    assert (image["cats/image.webp"] == webp).all()  # lossless WebP round-trips exactly


def test_exif_orientation_is_applied(odd_folder: Path, kit):
    upright = decode_image(odd_folder / "cats" / "exif_rotated.jpg", None, 3)
    assert upright.shape == (16, 8, 3)  # stored 8 x 16, orientation 6
    assert upright[:7].mean() < 30 and upright[9:].mean() > 225  # black half on top


def test_gray_only_folder_loads_as_one_channel_at_the_most_common_size(tmp_path: Path, kit):
    for i, size in enumerate([(6, 5), (6, 5), (9, 9)]):
        kit.save(tmp_path / "a" / f"{i}.png", Image.fromarray(np.full(size, 10 * i, np.uint8), "L"))
    imageset = open_dataset(str(tmp_path))
    assert imageset.image_shape == (6, 5, 1)
    assert imageset.original_sizes == {(6, 5): 2, (9, 9): 1}


def test_folder_without_any_valid_image_is_a_clear_error(tmp_path: Path, kit):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_text("no")
    (tmp_path / "b").mkdir()
    with pytest.raises(CnnlabError, match="no valid image found .*not an image"):
        open_dataset(str(tmp_path))


def test_folder_without_class_subfolders_is_an_error(tmp_path: Path, kit):
    kit.save(tmp_path / "x.png", Image.fromarray(kit.noise(4, 4)))
    with pytest.raises(CnnlabError, match="no class subfolders"):
        open_dataset(str(tmp_path))


def test_train_test_val_roots(tmp_path: Path, kit):
    kit.make_class_folder(tmp_path / "train", {"a": 3, "b": 2})
    kit.make_class_folder(tmp_path / "test", {"b": 1})
    kit.make_class_folder(tmp_path / "validation", {"a": 1, "b": 1})
    assert available_splits(str(tmp_path)) == ["test", "train", "val"]
    train = open_dataset(str(tmp_path))
    test = open_dataset(str(tmp_path), split="test")
    val = open_dataset(str(tmp_path), split="val")
    assert train.class_counts() == {"a": 3, "b": 2}
    assert test.classes == ["a", "b"] and test.targets.tolist() == [1]  # indices follow train/
    assert len(val) == 2


def test_test_split_with_unknown_class_or_missing_is_an_error(tmp_path: Path, kit):
    kit.make_class_folder(tmp_path / "train", {"a": 1})
    with pytest.raises(CnnlabError, match="has no test/ folder"):
        open_dataset(str(tmp_path), split="test")
    kit.make_class_folder(tmp_path / "test", {"zebra": 1})
    with pytest.raises(CnnlabError, match="class folders that train/ lacks: zebra"):
        open_dataset(str(tmp_path), split="test")


def test_tar_of_a_class_tree_is_read_in_place(tmp_path: Path, kit, monkeypatch):
    tree = kit.make_class_folder(tmp_path / "set" / "train", {"a": 2, "b": 3})
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "set", arcname="set")
    from_tar = open_dataset(str(archive))
    from_dir = open_dataset(str(tree.parent))
    assert from_tar.files == from_dir.files == ["a/000.png", "a/001.png", "b/000.png", "b/001.png", "b/002.png"]
    assert np.array_equal(from_tar.images, from_dir.images)
    assert from_tar.targets.tolist() == [0, 0, 1, 1, 1]
    # A cached archive is not even read again.
    import cnnlab.data.folders as folders

    def must_not_read(_):
        raise AssertionError("read the archive on a cache hit")

    monkeypatch.setattr(folders, "_tar_images", must_not_read)
    again = open_dataset(str(archive))
    assert again.files == from_tar.files and again.targets.tolist() == [0, 0, 1, 1, 1]


def test_a_tar_offers_its_split_folders_as_a_folder_does(tmp_path: Path, kit):
    """`cnnlab evaluate RUN set.tar.gz` scores the test split when the archive has one (it took train)."""
    kit.make_class_folder(tmp_path / "set" / "train", {"a": 2, "b": 1})
    kit.make_class_folder(tmp_path / "set" / "Test", {"a": 1, "b": 1})
    (tmp_path / "set" / "notes").mkdir()
    (tmp_path / "set" / "notes" / "readme.txt").write_text("not a split")
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "set", arcname="set")
    assert available_splits(str(archive)) == available_splits(str(tmp_path / "set")) == ["test", "train"]
    flat = tmp_path / "flat.tar"
    with tarfile.open(flat, "w") as tar:
        tar.add(tmp_path / "set" / "train", arcname="train-only/x")
    assert available_splits(str(flat)) == ["train"]
    (tmp_path / "broken.tar.gz").write_bytes(b"not an archive")
    assert available_splits(str(tmp_path / "broken.tar.gz")) == ["train"]  # loading it says what is wrong


def test_a_tars_splits_are_listed_once_and_again_when_it_changes(tmp_path: Path, kit, monkeypatch):
    from cnnlab.data import folders

    kit.make_class_folder(tmp_path / "set" / "train", {"a": 1})
    kit.make_class_folder(tmp_path / "set" / "test", {"a": 1})
    archive = tmp_path / "set.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "set", arcname="set")
    cache = tmp_path / "cache"
    assert folders.tar_splits(archive, cache) == ["test", "train"]
    real_open = tarfile.open

    def must_not_read(*args, **kwargs):
        raise AssertionError("listed the archive again")

    monkeypatch.setattr(folders.tarfile, "open", must_not_read)
    assert folders.tar_splits(archive, cache) == ["test", "train"]  # from cache/tar-splits.json
    monkeypatch.setattr(folders.tarfile, "open", real_open)
    with tarfile.open(archive, "w") as tar:  # rewritten: only a training split now
        tar.add(tmp_path / "set" / "train", arcname="set/train")
    os.utime(archive, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    assert folders.tar_splits(archive, cache) == ["train"]


def test_csv_classification_and_regression(tmp_path: Path, kit):
    kit.make_class_folder(tmp_path / "img", {"x": 3})
    (tmp_path / "labels.csv").write_text("path,target\nimg/x/000.png,cat\nimg/x/001.png,dog\nimg/x/002.png,cat\n"
                                         "img/x/missing.png,dog\n")
    with pytest.warns(DataWarning, match="missing.png"):
        cls = open_dataset(str(tmp_path / "labels.csv"))
    assert cls.task == "classification" and cls.classes == ["cat", "dog"]
    assert cls.targets.tolist() == [0, 1, 0] and cls.skipped == [("img/x/missing.png", "missing file")]
    (tmp_path / "ages.csv").write_text("img/x/000.png,12.5\nimg/x/001.png,30\n")
    reg = open_dataset(str(tmp_path / "ages.csv"))
    assert reg.task == "regression" and reg.classes is None
    assert reg.targets.dtype == np.float32 and reg.targets.tolist() == [12.5, 30.0]
    forced = open_dataset(str(tmp_path / "ages.csv"), task="classification")
    assert forced.classes == ["12.5", "30"]


def test_csv_errors_name_the_line(tmp_path: Path, kit):
    (tmp_path / "bad.csv").write_text("a.png,1\nlonely\n")
    with pytest.raises(CnnlabError, match="line 2 has 1 field"):
        open_dataset(str(tmp_path / "bad.csv"))


def test_unknown_source_is_a_clear_error(tmp_path: Path, kit):
    with pytest.raises(CnnlabError, match="not a built-in data set"):
        open_dataset(str(tmp_path / "nope"))


def test_decode_from_bytes_matches_file(tmp_path: Path, kit):
    kit.save(tmp_path / "a.png", Image.fromarray(kit.noise(5, 7)))
    data = (tmp_path / "a.png").read_bytes()
    assert np.array_equal(decode_image(data, (4, 4), 1), decode_image(tmp_path / "a.png", (4, 4), 1))
    assert decode_image(io.BytesIO(data), None, 3).shape == (5, 7, 3)


def test_no_warning_for_a_clean_folder(tmp_path: Path, kit):
    kit.make_class_folder(tmp_path, {"a": 2, "b": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imageset = open_dataset(str(tmp_path))
    assert imageset.classes == ["a", "b"] and imageset.targets.tolist() == [0, 0, 1, 1]
    assert imageset.skipped == [] and imageset.empty_classes == []


def test_bomb_between_one_and_two_times_the_limit_is_skipped_without_touching_warning_filters(tmp_path, kit,
                                                                                             monkeypatch):
    import warnings as w

    from PIL import Image as PILImage

    from cnnlab.data import decode as dec

    kit.save(tmp_path / "a" / "big.png", Image.fromarray(kit.noise(20, 20)))
    kit.save(tmp_path / "a" / "ok.png", Image.fromarray(kit.noise(4, 4)))
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 300)  # 400 pixels: 1.33x the limit, Pillow only warns
    filters = list(w.filters)
    with pytest.warns(DataWarning), pytest.warns(PILImage.DecompressionBombWarning):  # Pillow's own, let through
        imageset = open_dataset(str(tmp_path), image_size=(4, 4))
    assert imageset.skipped == [("a/big.png", dec.BOMB)] and imageset.files == ["a/ok.png"]
    assert w.filters == filters


def test_a_csv_field_over_the_csv_limit_names_the_line(tmp_path):
    from cnnlab.data.csvset import load_csv

    table = tmp_path / "t.csv"
    table.write_text("path,target\na.png,1\nb.png," + "7" * 200_000 + "\n")
    with pytest.raises(CnnlabError, match=r"t\.csv: line 3 is not a CSV row \(field larger than field limit"):
        load_csv(table)
    table.write_text("path,target\n" + "p" * 5000 + ",1\n")
    with pytest.raises(CnnlabError, match=r"t\.csv: line 2 has a field of 5000 characters"):
        load_csv(table)


def test_a_tar_that_is_not_one_is_one_short_line(tmp_path):
    from cnnlab.data.folders import load_tar

    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(b"\x1f\x8b garbage " * 20)
    with pytest.raises(CnnlabError) as error:
        load_tar(archive)
    assert str(error.value) == (f"{archive}: cannot read the archive (not a tar / tar.gz archive, or a damaged one) "
                                "Fix: check the file is a complete .tar / .tar.gz, or extract it and give the folder")


def test_decode_turns_every_failure_into_a_reason(tmp_path):
    from cnnlab.data import decode as dec

    for source, reason in [("bad\0name.png", dec.UNREADABLE), (str(tmp_path / ("n" * 300)), dec.UNREADABLE),
                           (b"GIF89a" + b"\0" * 20, dec.NOT_AN_IMAGE)]:
        with pytest.raises(dec.BadImage) as bad:
            dec.decode_image(source)
        assert bad.value.reason == reason
    with pytest.raises(CnnlabError, match=r"^channels: channels must be 1 or 3, got 2"):
        dec.decode_image(b"x", channels=2)
