"""The course examples (examples/, one folder per course text) at smoke size, and the commands
of examples/README.md and examples/GUIA.md.

Every script runs in-process; every experiment trains one epoch on at most 256 images
($CNNLAB_EXAMPLES_SMOKE=1) from a tiny MNIST-format data root made here; every spec is
summarised. Exact printed figures (shapes, parameter counts, the 5x7 numbers, the split
counts, the dW values) are checked.
"""

from __future__ import annotations

import re
import runpy
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnnlab.cli import main
from cnnlab.data.idx import write_idx

pytestmark = pytest.mark.slow  # about a minute in all on two shared cores

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(EXAMPLES.rglob("*.py"))
YAMLS = sorted(EXAMPLES.rglob("*.yaml"))


def _is_spec(path: Path) -> bool:
    """A model spec (top-level layers), not an experiment (which may hold one under model:)."""
    return "layers" in yaml.safe_load(path.read_text(encoding="utf-8"))

# What each script must print (exact lines or fragments of them).
PRINTED = {
    "convolucion_y_plantilla.py": ["O(I=28, K=5, P=0, S=1) = 24", "O(I=28, K=3, P=1, S=2) = 14",
                                   "P.1 (1x1xc) valid -> (28, 20, 1)", "P.2 (axbxc) valid -> (1, 1, 1)",
                                   "P.2 (axbxc) same -> (28, 20, 1)", "template found at (x, y) = (90, 60) score 1.0"],
    "mnist_rotado.py": ["wrote 64 rotated digits", "wrote 32 rotated digits"],
    "pooling_upsampling.py": ["max pooling 2x2: [[6.0, 8.0], [3.0, 4.0]]", "average pooling 2x2: [[3.25, 5.25], [2.0, 2.0]]",
                              "bed of nails: [[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 4.0, 0.0]",
                              "stride-2 conv: 3x32x32 -> (8, 16, 16)", "with 1040 parameters"],
    "campo_receptivo.py": ["-> 24x24 = 576 neurons", "weights without sharing: 14,400 shared: 25", "12x12 -> (6, 6)"],
    "correlacion_5x7.py": ["[[-16   5 -16   6   9 -14   4]", "[ -8   1 -12  -6   5 -10 -12]]", "red box (row 1, col 1): 6",
                           "matches the chapter's cv2.filter2D output: True", "stride 1: 5 x 7", "stride 2: 3 x 4"],
    "retropropagacion_conv.py": ["dW by hand: [[7.0, 9.0], [13.0, 15.0]]", "dW by autograd: [[7.0, 9.0], [13.0, 15.0]]",
                                 "equal: True"],
    "activaciones.py": ["ReLU: f(-2) = 0.00, f(2) = 2.00", "leaky ReLU (0.1): f(-2) = -0.20", "PReLU (a = 0.25): f(-2) = -0.50",
                        "|x| (absolute): f(-2) = 2.00", "wrote ejemplo-004/activaciones.png"],
    "degradacion.py": ["wrote 50 train images (5 per class)", "wrote 20 test images (2 per class)",
                       "wrote 4 rows to degradacion/degradacion.csv", "wrote degradacion/degradacion.png",
                       "model       train error  test error"],
    "tamanos_y_parametros.py": ["(6 - 3)/1 + 1 = 4", "(227 - 11)/4 + 1 = 55", "(55 - 3)/2 + 1 = 27", "LeNet-5 C1: 156",
                                "LeNet-5 C3: 1,516", "LeNet-5 C5: 48,120", "LeNet-5 F6: 10,164", "dense C1 would need: 4,821,600",
                                "VGG16 parameters: 138,357,544", "27 vs 49", "18 vs 25"],
}
# Specs: their exact parameter counts.
PARAMS = {"inception_ingenuo.yaml": "387,296", "inception_reducido.yaml": "163,696", "p3_sin_maxpool.yaml": "83,466", "p4_cabezal_conv.yaml": "184,586", "p5_cabezal_regresor.yaml": "183,425",
          "mnist_3conv.yaml": "93,962", "fashion_mnist_practice.yaml": "62,346", "cats_vs_dogs.yaml": "813,217",
          "cifar_cabezal_denso.yaml": "621,034", "cifar_cabezal_conv.yaml": "621,034"}
# Experiments whose data is a path the user makes first (relative to the data root).
DATA_ARG = {"p5_train.yaml": "mnist-rotado/train.csv", "bonet_rotado.yaml": "mnist-rotado/train.csv",
            "flow_from_directory.yaml": "mnist-carpetas/train", "cifar_train.yaml": "cifar10-jpeg"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MNIST and Fashion-MNIST in their IDX files, 300 noise images each, plus the derived sets."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for name in ("mnist", "fashion-mnist"):
        images = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)
        labels = (np.arange(300) % 10).astype(np.uint8)
        for prefix in ("train", "t10k"):
            write_idx(root / name / f"{prefix}-images-idx3-ubyte.gz", images)
            write_idx(root / name / f"{prefix}-labels-idx1-ubyte.gz", labels)
    # A CIFAR-10-shaped class-per-folder tree (where cifar10-jpeg.tar.gz would be): 6 / 3 noise images a class.
    from PIL import Image

    noise = np.random.default_rng(1)
    for split, per_class in (("train", 6), ("test", 3)):
        for label in range(10):
            folder = root / "cifar10-jpeg" / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(noise.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return root


def _run_script(path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    runpy.run_path(str(path), run_name="__main__")


def test_every_script_prints_its_figures(data_root: Path, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CNNLAB_EXAMPLES_SMOKE", "1")
    assert {p.name for p in SCRIPTS} == set(PRINTED)
    for path in SCRIPTS:
        _run_script(path, [str(data_root)], monkeypatch, tmp_path)
        out = capsys.readouterr().out
        for expected in PRINTED[path.name]:
            assert expected in out, f"{path.name}: {expected!r} not in\n{out}"
        assert path.read_text().startswith("# %% [markdown]")  # jupytext's percent format
    # The degradation experiment's CSV: one row per net and epoch (one smoke epoch), errors in [0, 1].
    rows = (tmp_path / "degradacion" / "degradacion.csv").read_text().splitlines()
    assert rows[0] == "model,epoch,train_error,test_error"
    assert [row.split(",")[:2] for row in rows[1:]] == [[m, "1"] for m in ("plain20", "plain56", "resnet20", "resnet56")]
    assert all(0.0 <= float(v) <= 1.0 for row in rows[1:] for v in row.split(",")[2:])
    assert (tmp_path / "degradacion" / "degradacion.png").read_bytes()[:4] == b"\x89PNG"


def test_every_spec_has_its_parameter_count(capsys):
    specs = [p for p in YAMLS if _is_spec(p)]
    assert {p.name for p in specs} == set(PARAMS)
    for path in specs:
        assert main(["summary", str(path)]) == 0
        assert f"Total params: {PARAMS[path.name]} " in capsys.readouterr().out, path.name


def test_every_experiment_trains_at_smoke_size(data_root: Path, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CNNLAB_EXAMPLES_SMOKE", "1")
    monkeypatch.chdir(ROOT)
    _run_script(EXAMPLES / "000-convolucion" / "mnist_rotado.py", [str(data_root)], monkeypatch, tmp_path)
    assert main(["data", "export", "mnist", str(data_root / "mnist-carpetas"), "--data", str(data_root)]) == 0
    monkeypatch.chdir(ROOT)
    experiments = [p for p in YAMLS if not _is_spec(p)]
    assert len(experiments) >= 8
    for path in experiments:
        source = [str(data_root / DATA_ARG[path.name])] if path.name in DATA_ARG else []
        run = tmp_path / "runs" / path.stem
        code = main(["train", *source, "--config", str(path), "--data", str(data_root), "--out", str(run), "-qq"])
        assert code == 0, path.name
        assert (run / "history.csv").read_text().count("\n") == 2, path.name  # header + the one smoke epoch
    capsys.readouterr()
    # The Keras split of the exported tree: 30 images per class, int(0.2 * 30) = 6 validate.
    assert main(["data", "inspect", str(data_root / "mnist-carpetas" / "train"), "--val-split", "0.2",
                 "--out", str(tmp_path / "insp")]) == 0
    out = capsys.readouterr().out
    assert "Found 240 images belonging to 10 classes.\nFound 60 images belonging to 10 classes." in out


def _commands(markdown: Path) -> list[str]:
    """The shell commands in the file's code blocks and `inline code` spans that start with cnnlab / python."""
    text = markdown.read_text(encoding="utf-8")
    found = re.findall(r"`((?:cnnlab|python) [^`\n]+)`", text)
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S):
        found += [line.split("  #")[0].strip() for line in block.splitlines() if line.strip().startswith(("cnnlab ", "python "))]
    return sorted(set(found))


@pytest.mark.parametrize("doc", ["README.md", "GUIA.md"])
def test_every_command_of_the_index_and_the_guide_parses(doc, capsys):
    commands = _commands(EXAMPLES / doc)
    assert len(commands) >= 20, doc
    for command in commands:
        argv = shlex.split(command.replace("$CNNLAB_DATA", "data"))
        if argv[0] == "python":
            assert (ROOT / argv[1]).is_file(), command  # a script of examples/
            continue
        words = [a for a in argv[1:] if not a.startswith("-")]
        options = [a.split("=")[0] for a in argv[1:] if a.startswith("--")]
        group = words[:2] if words and words[0] == "data" else words[:1]
        assert main([*group, "--help"]) == 0, command
        help_text = capsys.readouterr().out
        for option in options:
            assert option in help_text, f"{command}: {option} is not an option of cnnlab {' '.join(group)}"
        for word in argv[1:]:  # the files a command names exist (data folders are the user's)
            if word.startswith("examples/"):
                assert (ROOT / word).is_file(), command


def test_smoke_mode_caps_epochs_and_images(data_root: Path, monkeypatch):
    from cnnlab.train import config as cfg
    from cnnlab.train.api import load_data, smoke

    exp = cfg.validate({"data": {"source": "mnist", "root": str(data_root), "val_split": 0.2}, "epochs": 12})
    monkeypatch.delenv("CNNLAB_EXAMPLES_SMOKE", raising=False)
    assert smoke(exp) is exp
    train, val, _ = load_data(exp, split_record=None)
    assert (len(train), len(val)) == (240, 60)  # 300 images, 20 % of each class validates
    monkeypatch.setenv("CNNLAB_EXAMPLES_SMOKE", "1")
    small = smoke(exp.model_copy(update={"data": exp.data.model_copy(update={"limit": 50})}))
    assert small.epochs == 1 and small.data.limit == 50
    train, val, _ = load_data(small, split_record=None)
    assert (len(train), len(val)) == (50, 50)
    assert smoke(exp).data.limit == 256
