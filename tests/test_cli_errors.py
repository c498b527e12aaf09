"""Nothing a user types gives a traceback: each kind of bad input is ONE line on stderr,
exit 2, naming the argument or file, with a fix; and nothing is written where nobody asked.

The silent wrongs (a validation folder lacking a class, predict skipping extensions)
are checked by their right result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main

LONG = "x" * 300  # longer than a file name may be (255 bytes)



def make_folder(root: Path, classes=("a", "b"), per_class: int = 4, size: int = 8, suffix: str = ".png") -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            level = 40 + 160 * k // max(len(classes) - 1, 1)
            pixels = np.clip(rng.normal(level, 10, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}{suffix}", format="PNG")
    return root


@pytest.fixture
def trained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """(data folder, run folder) of a 2-epoch run of the auto model on an 8x8 two-class folder."""
    data = make_folder(tmp_path / "imgs")
    run = tmp_path / "run"
    assert main(["train", str(data), "--epochs", "2", "--batch-size", "4", "--val-split", "0.25",
                 "--schedule", "constant", "--out", str(run), "-qq"]) == 0
    capsys.readouterr()
    return data, run


# ----------------------------------------------------------------- numbers and options


def test_a_seed_beyond_2_to_the_32_names_the_flag_and_writes_nothing(tmp_path, refused):
    line = refused("train", "shapes", "--seed", 2**32, "--out", tmp_path / "run")
    assert line.startswith("error: --seed (seed): input should be less than 4294967296 (got 4294967296)")
    assert not (tmp_path / "run").exists()
    line = refused("data", "inspect", "shapes", "--seed", -1)
    assert line.startswith("error: --seed:")


@pytest.mark.parametrize("device", ["", "gpu", "cuda:x", "tpu"])
def test_an_unknown_device_lists_the_valid_ones(device, tmp_path, refused):
    line = refused("train", "shapes", "--device", device, "--out", tmp_path / "run")
    assert line.startswith("error: --device: unknown device") and "auto, cpu, cuda, cuda:N" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has a GPU")
def test_cuda_on_a_cpu_only_torch_is_one_line(tmp_path, refused):
    line = refused("train", "shapes", "--device", "cuda", "--out", tmp_path / "run")
    assert line.startswith("error: --device: CUDA is not available") and "--device cpu" in line


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_gpu_index_beyond_the_machines_gpus_is_refused(tmp_path, refused):
    line = refused("train", "shapes", "--device", f"cuda:{torch.cuda.device_count()}", "--out", tmp_path / "r")
    assert line.startswith("error: --device: there is no GPU")


def test_augment_cval_that_is_not_a_number(tmp_path, refused):
    line = refused("train", "shapes", "--augment", "cval=abc", "--out", tmp_path / "run")
    assert line.startswith("error: cval: must be a number from 0 to 255") and "'abc'" in line
    line = refused("data", "inspect", "shapes", "--augment", "horizontal_flip=maybe")
    assert line.startswith("error: horizontal_flip: must be true or false")
    line = refused("data", "inspect", "shapes", "--augment", "zoom_range=[0.8,")
    assert line.startswith("error: --augment: cannot read the value of 'zoom_range'")
    line = refused("data", "inspect", "shapes", "--augment", "crop_padding=100000000")
    assert line.startswith("error: crop_padding: must be a whole number of pixels from 0 to 256")


def test_a_usage_error_is_one_line_too(refused):
    line = refused("train", "shapes", "--epochs", "abc")
    assert "'--epochs'" in line and "cnnlab train --help" in line


def test_a_regression_loss_on_a_classification_set_leaves_no_run_folder(tmp_path, refused):
    data = make_folder(tmp_path / "imgs")
    line = refused("train", data, "--loss", "mse", "--out", tmp_path / "run")
    assert line.startswith("error: loss: mse is a regression loss and the data is a classification")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------- files and paths


def test_a_config_that_is_not_utf8(tmp_path, refused):
    config = tmp_path / "exp.yaml"
    config.write_bytes(b"data: shapes\nepochs: \xff\xfe\n")
    line = refused("train", "--config", config)
    assert line.startswith(f"error: {config}: is not UTF-8 text (byte 21 is b'\\xff')")


def test_a_config_nested_deep_enough_to_recurse(tmp_path, refused):
    config = tmp_path / "exp.yaml"
    config.write_text("data: shapes\nmodel_options: " + "[" * 2000 + "]" * 2000 + "\n")
    assert refused("train", "--config", config).startswith(f"error: {config}: is nested too deeply to read")


def test_a_json_config_that_is_not_json(tmp_path, refused):
    config = tmp_path / "exp.json"
    config.write_text('{"data": {"source": "shapes"},\n "epochs": 1,}\n')
    line = refused("train", "--config", config)
    assert line.startswith(f"error: {config}:2: is not valid JSON")


def test_a_csv_with_a_200kb_field(tmp_path, refused):
    table = tmp_path / "set.csv"
    table.write_text("path,target\nimg.png," + "9" * 200_000 + "\n")
    line = refused("data", "inspect", table)
    assert line.startswith(f"error: {table}: line 2 ")
    assert len(line) < 1000


def _bundle(folder: Path, meta_changes: dict) -> Path:
    from cnnlab.inference.bundle import save_bundle
    from cnnlab.spec import build

    spec = {"input_shape": [8, 8, 3], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2, "activation": "softmax"}]}
    meta = {"architecture": {"kind": "spec", "spec": spec}, "classes": ["a", "b"], "task": "classification",
            "preprocessing": {"image_size": [8, 8], "channels": 3, "scale": 1 / 255, "mean": None, "std": None},
            "output": {"activation": "softmax", "in_model": True, "units": 2}}
    meta.update(meta_changes)
    save_bundle(folder, build(spec), {k: v for k, v in meta.items() if v is not None})
    return folder


def test_a_bundle_without_preprocessing_or_not_a_mapping(tmp_path, refused):
    data = make_folder(tmp_path / "imgs")
    bundle = _bundle(tmp_path / "b1", {"preprocessing": None})
    line = refused("evaluate", bundle, data)
    assert line.startswith(f"error: {bundle / 'model.json'}: model.json has no 'preprocessing'")
    line = refused("predict", bundle, data / "a" / "0.png")
    assert "has no 'preprocessing'" in line
    bundle = _bundle(tmp_path / "b2", {"preprocessing": "rescale"})
    line = refused("evaluate", bundle, data)
    assert line.startswith(f"error: {bundle / 'model.json'}: field 'preprocessing': must be a mapping")
    (bundle / "model.json").write_text("[1, 2]")
    line = refused("predict", bundle, data / "a" / "0.png")
    assert line.startswith(f"error: {bundle / 'model.json'}: model.json is not a cnnlab bundle description")
    assert main(["predict", str(_bundle(tmp_path / "b3", {})), str(data / "a" / "0.png")]) == 0


def test_a_file_that_is_not_an_image_given_to_predict(tmp_path, refused):
    bundle = _bundle(tmp_path / "b", {})
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"not a png at all")
    line = refused("predict", bundle, fake)
    assert line.startswith(f"error: {fake}: cannot use this image: not an image Pillow can read")


def test_names_too_long_for_the_file_system(tmp_path, refused):
    bundle = _bundle(tmp_path / "b", {})
    for argv, where in [
        (["predict", bundle, tmp_path / LONG], str(tmp_path / LONG)),
        (["predict", tmp_path / LONG, tmp_path], str(tmp_path / LONG)),
        (["train", tmp_path / LONG], str(tmp_path / LONG)),
        (["train", "--config", tmp_path / f"{LONG}.yaml"], str(tmp_path / f"{LONG}.yaml")),
        (["train", "shapes", "--model", tmp_path / LONG], f"--model {tmp_path / LONG}"),
        (["train", "shapes", "--out", tmp_path / LONG / "run"], f"--out {tmp_path / LONG / 'run'}"),
        (["data", "inspect", tmp_path / LONG], str(tmp_path / LONG)),
        (["data", "inspect", "shapes", "--data", tmp_path / LONG], f"--data {tmp_path / LONG}"),
        (["summary", tmp_path / f"{LONG}.yaml"], str(tmp_path / f"{LONG}.yaml")),
    ]:
        line = refused(*argv)
        assert "the name is too long for the file system" in line, line
        assert line.startswith(f"error: {where[:150]}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_a_file_where_a_folder_goes_and_the_reverse(tmp_path, refused):
    data = make_folder(tmp_path / "imgs")
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    line = refused("train", data, "--out", afile)
    assert line.startswith(f"error: --out {afile}: is a file; a folder is written here")
    line = refused("train", data, "--out", afile / "run")
    assert line.startswith(f"error: --out {afile / 'run'}: {afile} is a file, so no folder can be made inside it")
    line = refused("data", "inspect", data, "--out", afile)
    assert line.startswith(f"error: --out {afile}: is a file")
    bundle = _bundle(tmp_path / "b", {})
    line = refused("evaluate", bundle, data, "--png", tmp_path)
    assert line.startswith(f"error: --png {tmp_path}: is a folder; a file is written here")
    line = refused("train", "--config", tmp_path)
    assert line.startswith(f"error: {tmp_path}: is a folder, not a experiment file") or \
        line.startswith(f"error: {tmp_path}: is a folder, not an experiment file")
    line = refused("predict", afile, data)
    assert line.startswith(f"error: {afile}: is a file, not a bundle or run folder")


def test_an_unwritable_output_folder(tmp_path, refused):
    data = make_folder(tmp_path / "imgs")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        line = refused("train", data, "--out", locked / "run")
        assert line.startswith(f"error: --out {locked / 'run'}: the folder {locked} is not writable")
        line = refused("data", "inspect", data, "--out", locked / "grids")
        assert "is not writable" in line
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_a_mistyped_data_root_is_refused_not_created(tmp_path, refused):
    line = refused("train", "shapes", "--data", tmp_path / "newroot", "--out", tmp_path / "run")
    assert line.startswith(f"error: --data {tmp_path / 'newroot'}: no such data root folder")
    assert sorted(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ messages


def test_a_long_bad_value_is_cut_in_the_message(tmp_path, refused):
    line = refused("train", "shapes", "--optimizer", "q" * 8000, "--out", tmp_path / "run")
    assert line.startswith("error: --optimizer (optimizer.name): input should be")
    assert "(8002 characters)" in line and len(line) < 1200


def test_a_garbage_tar_is_one_line(tmp_path, refused):
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(os.urandom(300))
    line = refused("data", "inspect", garbage)
    assert line == (f"error: {garbage}: cannot read the archive (not a tar / tar.gz archive, or a damaged one) "
                    "Fix: check the file is a complete .tar / .tar.gz, or extract it and give the folder")


def test_data_inspect_writes_nothing_without_out(tmp_path, capsys, monkeypatch):
    data = make_folder(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    assert main(["data", "inspect", str(data)]) == 0
    out = capsys.readouterr().out
    assert "no files written: add --out DIR" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]
    assert main(["data", "inspect", str(data), "--out", "grids"]) == 0
    assert f"wrote {Path('grids') / 'samples.png'}" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["samples.png"]


def test_demo_needs_its_out_folder(refused):
    line = refused("demo")
    assert "'--out'" in line


# ----------------------------------------------------------------------- resume


def test_resume_refuses_a_flag_that_changes_the_run(trained, refused):
    _, run = trained
    line = refused("train", "--resume", run, "--optimizer", "sgd")
    assert line.startswith(f"error: --resume {run}: --optimizer would change the run being resumed "
                           "(saved: 'adam', given: 'sgd')")
    line = refused("train", "--resume", run, "--model", "lenet5")
    assert "--model would change the run" in line
    assert main(["train", "--resume", str(run), "--epochs", "3", "-qq"]) == 0  # epochs may change
    assert len((run / "history.csv").read_text().splitlines()) == 4


def test_resume_for_more_epochs_of_a_schedule_laid_out_over_the_run_is_refused(tmp_path, refused):
    data = make_folder(tmp_path / "imgs")
    run = tmp_path / "run"
    assert main(["train", str(data), "--epochs", "1", "--batch-size", "4", "--out", str(run), "-qq"]) == 0  # onecycle
    line = refused("train", "--resume", run, "--epochs", "3")
    assert line.startswith(f"error: --resume {run}: --epochs 3: the run's onecycle schedule is laid out over its 1 epochs")


def test_a_run_killed_before_its_first_state_resumes_from_the_start(trained, capsys):
    _, run = trained
    for entry in run.iterdir():  # what is left of a run killed before its first checkpoint
        if entry.name not in ("config.yaml", "split.json"):
            if entry.is_dir():
                import shutil

                shutil.rmtree(entry)
            else:
                entry.unlink()
    split = (run / "split.json").read_text()
    assert main(["train", "--resume", str(run), "-q"]) == 0
    out = capsys.readouterr().out
    assert f"notice: {run} has no saved training state yet: training from the start" in out
    assert len((run / "history.csv").read_text().splitlines()) == 3  # header + the 2 epochs of the config
    assert (run / "split.json").read_text() == split  # the same validation images


def test_a_corrupted_newest_state_is_one_notice_line(trained, capsys):
    from cnnlab.train.state import state_files

    _, run = trained
    newest = state_files(run)[-1]
    newest.write_bytes(newest.read_bytes()[:-10] + b"0123456789")
    assert main(["train", "--resume", str(run), "-q"]) == 0
    captured = capsys.readouterr()
    assert "UserWarning" not in captured.err and "Warning:" not in captured.err
    notices = [line for line in captured.out.splitlines() if line.startswith("notice:")]
    assert notices == [f"notice: {newest} is corrupted or half-written (checksum mismatch); using the previous state"]


def test_a_split_json_that_is_not_json(trained, refused):
    _, run = trained
    (run / "split.json").write_text("{broken")
    line = refused("train", "--resume", run, "--epochs", "3")
    assert line.startswith(f"error: {run / 'split.json'}: the saved train / validation split is not readable JSON")
    assert "delete it to make a new split" in line


# ------------------------------------------------------------------- silent wrongs


def test_a_validation_folder_lacking_a_class_keeps_the_training_labels(tmp_path, refused):
    from cnnlab.train import config as cfg
    from cnnlab.train.api import load_data

    train = make_folder(tmp_path / "train", classes=("a", "b", "c"))
    val = make_folder(tmp_path / "val", classes=("a", "c"), per_class=2)
    exp = cfg.load_experiment(None, {"data.source": str(train), "data.val": str(val)})
    train_set, val_set, _ = load_data(exp, split_record=None)
    assert val_set.classes == ["a", "b", "c"]
    assert val_set.targets.tolist() == [0, 0, 2, 2]  # 'c' is class 2 as in training, not 1
    make_folder(tmp_path / "val", classes=("d",), per_class=1)
    line = refused("train", train, "--out", tmp_path / "run", "-qq",
                   "--config", _config(tmp_path, {"data": {"source": str(train), "val": str(val)}}))
    assert "has class(es) the training set lacks: d" in line
    assert not (tmp_path / "run").exists()


def _config(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(raw))
    return path


def test_evaluate_on_a_test_folder_lacking_a_class_scores_it_right(trained, tmp_path, capsys):
    data, run = trained
    test = tmp_path / "test"
    (test / "b").mkdir(parents=True)
    for name in ("0.png", "1.png"):
        (test / "b" / name).write_bytes((data / "b" / name).read_bytes())
    assert main(["evaluate", str(run), str(test), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == ["a", "b"] and result["images"] == 2
    assert [row[1] + row[0] for row in result["confusion_matrix"]] == [0, 2]  # both are true class 'b' (index 1)


def test_predict_dir_reads_every_extension_training_reads(tmp_path, capsys):
    from cnnlab.data.folders import IMAGE_EXTENSIONS

    bundle = _bundle(tmp_path / "b", {})
    folder = tmp_path / "pics"
    folder.mkdir()
    pixels = np.full((8, 8, 3), 128, np.uint8)
    formats = {".jfif": "JPEG", ".pgm": "PPM", ".ppm": "PPM", ".jpe": "JPEG", ".dib": "BMP", ".png": "PNG"}
    for suffix, fmt in formats.items():
        image = Image.fromarray(pixels[..., 0] if suffix == ".pgm" else pixels)
        image.save(folder / f"img{suffix}", format=fmt)
    (folder / ".hidden.png").write_bytes((folder / "img.png").read_bytes())
    (folder / "notes.txt").write_text("not an image")
    assert set(formats) <= IMAGE_EXTENSIONS
    assert main(["predict", str(bundle), str(folder), "--json"]) == 0
    files = sorted(Path(r["file"]).name for r in json.loads(capsys.readouterr().out))
    assert files == sorted(f"img{s}" for s in formats)


# --------------------------------------------------------- the printer's own safety nets


def test_an_os_error_is_one_line_naming_the_file(monkeypatch, refused):
    import cnnlab.inference

    def refuse(path, model=None):  # noqa: ANN001, ANN202
        raise PermissionError(13, "Permission denied", "/srv/models/run")

    monkeypatch.setattr(cnnlab.inference, "load", refuse)
    line = refused("predict", "/srv/models/run", "x.png")
    assert line == "error: /srv/models/run: Permission denied Fix: check the path, its permissions and the free space"


def test_a_warning_is_one_line_without_the_source_location(tmp_path, capsys):
    data = make_folder(tmp_path / "imgs")
    (data / "a" / "broken.png").write_bytes(b"not a png")
    assert main(["train", str(data), "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "run"), "-qq"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: {data.resolve()}: skipped 1 file(s): a/broken.png (not an image Pillow can read)"]


def test_a_config_of_aliases_repeating_aliases_is_refused_before_expanding(tmp_path, refused):
    config = tmp_path / "exp.yaml"
    rows = ["data: shapes", "model_options:", "  a: &a [x, x, x, x, x, x, x, x, x]"]
    rows += [f"  {b}: &{b} [{', '.join(['*' + a] * 9)}]" for a, b in zip("abcdefg", "bcdefgh")]  # 9**8 values
    config.write_text("\n".join(rows) + "\n")
    line = refused("train", "--config", config)
    assert line.startswith(f"error: {config}: expands to more than 100,000 values")


def test_an_image_size_beyond_the_bound_or_the_memory(tmp_path, refused):
    from cnnlab.data.cache import check_fits_in_memory
    from cnnlab.errors import CnnlabError

    config = tmp_path / "exp.yaml"
    config.write_text("data: {source: shapes, image_size: [100000, 100000]}\n")
    line = refused("train", "--config", config)
    assert line.startswith(f"error: {config}:1: field 'data.image_size.0': input should be less than or equal to 4096")
    check_fits_in_memory(1000, 32, 32, 3, "small")
    with pytest.raises(CnnlabError, match=r"^photos: 1000000 images of 4096x4096x3 need 46875\.0 GiB decoded"):
        check_fits_in_memory(1_000_000, 4096, 4096, 3, "/data/photos|None|None")
