"""Issue 13: fuzz every command of the CLI in one process; nothing a user types gives a traceback.

Hypothesis draws a command among those registered on the typer app at test time
(so a command added later is fuzzed without touching this file), then its
arguments and options: values from a small per-option table of good and bad
ones, a generic generator by type for every other option, paths to files made
here (valid, odd and broken images, garbage bytes, specs and experiment files
mutated from examples/, a tiny trained run), and fresh names for outputs. Each
command line runs through :func:`cnnlab.cli.main` in a new folder as the
current directory, and fails the test on

- an exit status other than 0 or 2, or an exception that escapes ``main``;
- "Traceback" anywhere in the output, or an error that is not one line;
- a file written (or changed) anywhere but under a path given on the line
  (or beside a given output with its name as a prefix, e.g. ``heat-box.png``
  for ``-o heat.png``), under the data root ($CNNLAB_DATA) or in a command's
  documented default output (``train``: ``runs/``, its run folder).

Trainings stay tiny: 8 images of 8x8, ``--epochs`` 1 (or 0 / -1, which must
fail), no ``--compile``. ``data download`` only gets names that are not data
sets (tests never touch the network); ``serve`` cannot bind: uvicorn is
replaced by a function that fails the test if reached.

``FUZZ_EXAMPLES`` sets the number of command lines (default: 60, about 45 s
on 2 CPU cores); ``FUZZ_COLLECT=1`` keeps going after an escape and reports
every distinct one at the end (the long run of benchmarks/RESULTS.md); ``FUZZ_LOG=FILE``
also appends each new one to FILE as it is found (and the count so far to FILE.progress).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import traceback
import typing
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# The model specs among the course examples (experiment files name data the fuzz does not have).
EXAMPLE_SPECS = sorted(p for p in EXAMPLES.rglob("*.yaml") if "\nlayers:" in p.read_text(encoding="utf-8"))
assert EXAMPLE_SPECS, "no model spec found under examples/: the fuzz would lose its mutated specs"
EXAMPLE_COUNT = int(os.environ.get("FUZZ_EXAMPLES", "60"))
COLLECT = os.environ.get("FUZZ_COLLECT", "") not in ("", "0")

# --- the files a command line may name ---------------------------------------------


def _png(array: np.ndarray, **save: typing.Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **save)
    return buffer.getvalue()


def _pool_files() -> dict[str, bytes]:
    """name -> content of every file of the pool (folders are names with '/')."""
    rng = np.random.default_rng(0)
    rgb = (rng.random((24, 24, 3)) * 255).astype(np.uint8)
    files: dict[str, bytes] = {
        "img.png": _png(rgb),
        "gray.png": _png(rgb[:, :, 0]),
        "rgba.png": _png(np.dstack([rgb, rgb[:, :, :1]])),
        "tiny.png": _png(rgb[:1, :1]),
        "wide.png": _png((rng.random((2, 300)) * 255).astype(np.uint8)),
        "patch.png": _png(rgb[4:12, 4:12]),
        "img16.png": _png((rng.random((10, 10)) * 65535).astype(np.uint16)),
        "photo.jpg": b"",
        "garbage.png": bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
        "empty.png": b"",
        "trunc.png": _png(rgb)[:60],
        "notutf8.yaml": b"input_shape: [8, 8, 1]\n# caf\xe9\n",
        "garbage.yaml": bytes(rng.integers(0, 256, 200, dtype=np.uint8)),
        "deep.yaml": b"[" * 3000 + b"]" * 3000,
        "list.yaml": b"- 1\n- 2\n",
        "data.csv": b"file,target\nimgs/a/0.png,1.5\nimgs/b/0.png,2.5\nmissing.png,x\n",
        "bad.csv": b"file,target\n" + b'"' + b"x" * 5000 + b"\n",
    }
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")
    files["photo.jpg"] = buffer.getvalue()
    for label in ("a", "b"):
        for i in range(4):
            files[f"imgs/{label}/{i}.png"] = _png((rng.random((8, 8, 3)) * 255).astype(np.uint8))
    for example in EXAMPLE_SPECS:
        files[f"spec-{example.name}"] = example.read_bytes()
    files["spec-tiny.yaml"] = yaml.safe_dump(
        {"input_shape": [8, 8, 3], "layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 3, "activation": "relu"},
                                              {"type": "GlobalAveragePooling2D"}, {"type": "Dense", "units": 2, "activation": "softmax"}]}
    ).encode()
    files["exp.yaml"] = yaml.safe_dump({"data": {"source": "imgs"}, "model": "spec-tiny.yaml", "epochs": 1, "batch_size": 4}).encode()
    files["exp.json"] = b'{"data": {"source": "imgs"}, "epochs": 1'  # not JSON
    return files


POOL = _pool_files()
POOL_NAMES = sorted({name.split("/")[0] for name in POOL} | {"run"})
MISSING = ["missing.png", "missing.yaml", "nofolder/x.png", "s" * 300 + ".png", ".", "..", "", "-", "img.png/x.png"]
OUTPUTS = ["out.png", "out.jpg", "out.psd", "out", "o/out.png", "out.png/x.png", "img.png", "imgs", "runs/x", "x" * 300 + ".png", ".", ""]
ODD_TEXT = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), max_size=12)
ODD_INT = st.one_of(st.integers(-3, 40), st.sampled_from([0, -1, 2**31, 2**32 + 1, 2**63, 10**30]))
ODD_FLOAT = st.one_of(st.floats(-10, 10), st.sampled_from([0.0, 0.5, 1.0, 1.5, -0.1, 1e-9, 1e30, float("nan"), float("inf")]))
PATHS = st.one_of(st.sampled_from(POOL_NAMES), st.sampled_from(MISSING))

# Options (by parameter name) with a table of values that mean something, mixed with odd ones.
VALUES: dict[str, list[str]] = {
    "kernel": ["sobel-x", "box:3", "gaussian:5:1.0", "1 2 1; 2 4 2; 1 2 1", "box:10000000000", "gaussian:9999999", "1e400", "1 2; 3", "sharpen:3", "5", "5x3", "0x3", "nope"],
    "padding": ["same", "valid", "full", "1", "1,2,3,4", "-1", "99999999999", "2x"],
    "stride": ["1", "2", "2,1", "0", "-1", "99999999999999999999", "a"],
    "dilation": ["1", "2", "3,1", "0", "100000000"],
    "border": ["reflect", "zeros", "wrap", "replicate", "symmetric", "mirror"],
    "mode": ["corr", "conv", "same"],
    "scale": ["auto", "clip", "minmax", "abs", "log"],
    "input": ["28x28x1", "5x5", "7", "0x0", "100000000000x1x1", "axb", "28x28x1x1"],
    "input_shape": ["28,28,1", "32,32,3", "8,8,3", "0,0,0", "abc", "100000000000,1,1", "1,1", "224x224x3"],
    "split": ["train", "test", "val", "nope"],
    "family": ["lenet", "vgg", "resnet", "notes", "nope"],
    "optimizer": ["sgd", "adam", "adamw", "rmsprop", "lbfgs"],
    "schedule": ["constant", "step", "cosine", "onecycle", "plateau", "warp"],
    "loss": ["mse", "mae", "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy", "hinge"],
    "device": ["cpu", "auto", "", "gpu", "cuda", "cuda:1", "mps"],
    "precision": ["auto", "fp32", "bf16", "fp16"],
    "tta": ["none", "flip", "flip_translate", "rotate"],
    "augment": ["rotation_range=20", "zoom_range=[0.8,", "zoom_range=[0.8,1.2]", "cval=abc", "horizontal_flip=true", "nope=1", "garbage", "exp.yaml", "=3"],
    "method": ["gradcam", "cam", "saliency", "occlusion", "nope"],
    "format": ["onnx", "html", "json", "nope"],
}
# Which parameters name an existing thing (paths) and which a new file or folder to write.
READS = {"image", "template", "spec", "model", "data", "source", "images", "config", "resume", "data_root", "bundle", "run", "runs", "path"}
WRITES = {"output", "out", "box", "compare", "report", "save", "dest", "destination"}
ZOO = ["lenet5", "mnist_3conv", "vgg16", "resnet20", "cifar_speedrun", "fashion_mnist_practice", "nope"]
# Not "shapes": the built-in set is generated on first use (about 15 s), which would be most of the budget;
# the built-in names here are absent from the (empty) data root and must fail cleanly.
DATA_SETS = ["mnist", "cifar10", "fashion-mnist", "imgs", "data.csv", "bad.csv", "nope"]


# --- the commands, read from the app ------------------------------------------------------


def _commands() -> list[tuple[tuple[str, ...], typing.Any]]:
    import typer

    from cnnlab.cli import app

    found: list[tuple[tuple[str, ...], typing.Any]] = []

    def walk(command: typing.Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):
            for name, sub in sorted(command.commands.items()):
                walk(sub, (*path, name))
        else:
            found.append((path, command))

    walk(typer.main.get_command(app), ())
    return found


def _base_type(param: typing.Any) -> type:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", str)
    for _ in range(3):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if not args:
            break
        annotation = args[0]
    return annotation if isinstance(annotation, type) else str


def _value(draw: st.DrawFn, command: tuple[str, ...], param: typing.Any) -> str:
    name = param.name
    kind = _base_type(param)
    if command == ("serve",) and name == "model":
        # never a loadable model: serve fails before it binds (uvicorn is also replaced, see the test)
        return draw(st.sampled_from([*MISSING, "garbage.png", "spec-tiny.yaml", "imgs", "exp.json"]))
    if command == ("data", "download") and name == "name":
        return draw(st.sampled_from(["nope", "mnist2", "", "../x", "imgs"]))  # never a real set: no network in tests
    if name == "nproc":  # never a real multi-process launch here (each would train for seconds)
        return str(draw(st.sampled_from([1, 0, -1, 2**31, 2**63, 10**30])))
    if name in ("epochs",):
        return str(draw(st.sampled_from([1, 1, 1, 0, -1])))
    if name in VALUES and draw(st.integers(0, 4)):
        return draw(st.sampled_from(VALUES[name]))
    if name in WRITES:
        return draw(st.one_of(st.sampled_from(OUTPUTS), ODD_TEXT))
    if name == "model":
        return draw(st.one_of(st.sampled_from(["run", "run", *ZOO]), PATHS))
    if name in ("data", "source") and draw(st.booleans()):
        return draw(st.sampled_from(DATA_SETS))
    if name in READS:
        return draw(PATHS)
    if kind is int:
        return str(draw(ODD_INT))
    if kind is float:
        return repr(draw(ODD_FLOAT))
    return draw(st.one_of(ODD_TEXT, PATHS, st.sampled_from(["0", "-1", "1e400", "[", "{a: 1}"])))


@st.composite
def command_lines(draw: st.DrawFn, commands: list[tuple[tuple[str, ...], typing.Any]]) -> list[str]:
    path, command = draw(st.sampled_from(commands))
    argv = list(path)
    for param in command.params:
        if param.param_type_name == "argument":
            if not param.required and draw(st.integers(0, 3)) == 0:
                continue
            count = draw(st.integers(1, 3)) if param.nargs == -1 else 1
            argv += [_value(draw, path, param) for _ in range(count)]
            continue
        if getattr(param, "is_eager", False) or param.name in ("help", "compile"):
            continue  # --compile: torch.compile would take minutes
        trains = path == ("train",) and param.name == "epochs"
        if not trains and not param.required and draw(st.integers(0, 2)) != 0:
            continue
        flag = param.opts[0] if param.opts else f"--{param.name}"
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            argv.append(flag)
            continue
        for _ in range(draw(st.integers(1, 2)) if param.multiple else 1):
            argv += [flag, _value(draw, path, param)]
    return argv


def _mutate_specs(draw: st.DrawFn, folder: Path) -> None:
    """Rewrite some pool specs / experiment files with one value changed, a key dropped or a layer doubled."""
    odd = st.sampled_from([0, -1, 10**12, 2**63, 1.5, "abc", None, [], [3, 3, 3], {"type": "relu", "alpha": 0.1}, True, "same", 1e400])
    for name in ("spec-tiny.yaml", "exp.yaml", *(f"spec-{e.name}" for e in EXAMPLE_SPECS)):
        if not draw(st.integers(0, 2)) == 0:
            continue
        data = yaml.safe_load(POOL[name])
        target = data
        if isinstance(data, dict) and isinstance(data.get("layers"), list) and data["layers"]:
            target = data["layers"][draw(st.integers(0, len(data["layers"]) - 1))]
        if not isinstance(target, dict) or not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        action = draw(st.integers(0, 3))
        if action == 0:
            del target[key]
        elif action == 1 and isinstance(data, dict) and isinstance(data.get("layers"), list):
            data["layers"].append(dict(target))
        else:
            target[key] = draw(odd)
        (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


# --- running one command line -------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    seen: dict[str, tuple[int, int]] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            try:
                stat = path.lstat()
            except OSError:
                continue
            seen[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns) if name in files else (-1, 0)
    return seen


# Where a command writes when no path is given, as its --help documents (and it prints the path).
DEFAULT_OUTPUTS = {("train",): "runs"}


def _allowed(written: str, argv: list[str]) -> bool:
    parts = Path(written).parts
    if parts and parts[0] == "cnnlab-data":
        return True
    if any(tuple(argv[: len(command)]) == command and parts[0] == folder for command, folder in DEFAULT_OUTPUTS.items()):
        return True
    for value in argv:
        if not value or len(value) > 255:  # (a value may start with '-': `demo --out --resume` is a folder)
            continue
        if os.path.normpath(value) == ".":
            return True  # the current folder itself was given (demo --out ., --data .)
        given = Path(os.path.normpath(value)).parts
        if parts[: len(given)] == given:  # the path itself or under it
            return True
        if len(parts) == len(given) and parts[:-1] == given[:-1] and parts[-1].startswith(Path(given[-1]).stem):
            return True  # beside it, named after it (heat.png -> heat-box.png)
    return False


class Escape(Exception):
    """One way a command line broke the promise."""


@contextlib.contextmanager
def _in_folder(folder: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def _run(argv: list[str], folder: Path) -> None:
    from cnnlab.cli import main

    before = _snapshot(folder)
    out, err = io.StringIO(), io.StringIO()
    with _in_folder(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException as error:  # noqa: BLE001 - anything that escapes main is the finding
            raise Escape(f"{type(error).__name__} escaped: {str(error)[:300]}\n{traceback.format_exc()[-1500:]}") from None
    text = out.getvalue() + err.getvalue()
    if os.environ.get("FUZZ_VERBOSE"):
        print(code, argv, err.getvalue().strip().splitlines()[-1:], file=sys.__stderr__)
    if code not in (0, 2):
        raise Escape(f"exit {code}: {text[-800:]}")
    if "Traceback" in text:
        raise Escape(f"traceback in the output: {text[-1500:]}")
    errors = [line for line in err.getvalue().splitlines() if line.startswith("error:")]
    if len(errors) > 1 or (errors and err.getvalue().strip().splitlines()[-1] != errors[0]):
        raise Escape(f"an error of several lines: {err.getvalue()[-800:]}")  # one line, and nothing after it
    after = _snapshot(folder)
    changed = sorted(p for p, stat in after.items() if before.get(p) != stat and stat[0] != -1)
    stray = [p for p in changed if not _allowed(p, argv)]
    if stray:
        raise Escape(f"wrote outside the given paths: {stray[:5]}")


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files and a tiny trained run (``run``), made once; each example gets a copy."""
    from cnnlab.cli import main

    folder = tmp_path_factory.mktemp("fuzz-pool")
    for name, content in POOL.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    with _in_folder(folder), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "imgs", "--model", "spec-tiny.yaml", "--epochs", "1", "--batch-size", "4", "--out", "run", "-qq"]) == 0
    assert (folder / "run").is_dir()
    return folder


# Command lines the fuzz found escaping, fixed since: each must now pass the same checks.
FOUND = [
    ["demo", "--out", ""],  # wrote the demo's files into the current folder
    ["demo", "--out", "."],  # ... which is right when the current folder is what was given
    ["demo", "--out", "--resume"],  # a folder named --resume is a given path too
    ["data", "inspect", "", "--data", "", "--out", "out.jpg"],  # --data '' cached decoded images in the current folder
    ["filter", "img.png", "-k", "box:10000000000", "-o", "out.png"],
    ["summary", "deep.yaml"],
    ["summary", "notutf8.yaml"],
    ["match", "img.png", "patch.png", "-o", "out.psd"],
    ["train", "imgs", "--epochs", "1", "--nproc", str(2**63)],  # torch's launcher built 2**63 workers: hung, 9 GB
]


@pytest.mark.parametrize("argv", FOUND, ids=[" ".join(a) or "-" for a in FOUND])
def test_found_by_the_fuzz(pool: Path, tmp_path: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_DATA", "cnnlab-data")
    folder = tmp_path / "ex"
    shutil.copytree(pool, folder, symlinks=True)
    _run(argv, folder)
    if "." not in argv and "--resume" not in argv:
        assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in pool.iterdir())  # nothing new beside the pool


def test_every_command_is_fuzzed() -> None:
    names = {" ".join(path) for path, _ in _commands()}
    assert {"filter", "match", "shape", "demo", "summary", "models", "train", "evaluate", "predict", "data inspect", "data download"} <= names
    from cnnlab.cli import COMMAND_MODULES

    assert len(names) >= len(COMMAND_MODULES)  # every command module adds at least one


def test_fuzz_the_cli(pool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _commands()
    try:  # serve must never bind a port here
        import uvicorn

        def no_serving(*args: typing.Any, **kwargs: typing.Any) -> None:
            raise AssertionError("the fuzz reached uvicorn: serve would have blocked")

        monkeypatch.setattr(uvicorn, "run", no_serving)
        monkeypatch.setattr(uvicorn.Server, "run", no_serving)
    except ImportError:
        pass
    monkeypatch.setenv("CNNLAB_DATA", "cnnlab-data")  # relative: under each example's folder
    monkeypatch.setenv("COLUMNS", "100")
    found: dict[str, tuple[list[str], str]] = {}
    counter = iter(range(10**9))

    @settings(
        max_examples=EXAMPLE_COUNT,
        deadline=None,
        database=None,
        derandomize=os.environ.get("CI") == "true",
        suppress_health_check=list(HealthCheck),
        # collecting: no shrinking, every distinct escape is reported at the end
        phases=[Phase.explicit, Phase.generate] if COLLECT else list(Phase),
    )
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        number = next(counter)
        folder = tmp_path / f"ex{number}"
        if os.environ.get("FUZZ_LOG") and number % 100 == 0:
            with open(os.environ["FUZZ_LOG"] + ".progress", "w", encoding="utf-8") as progress:
                progress.write(f"{number} command lines run, {len(found)} distinct escapes\n")
        shutil.copytree(pool, folder, symlinks=True)
        _mutate_specs(data.draw, folder)
        argv = data.draw(command_lines(commands), label="argv")
        try:
            _run(argv, folder)
        except Escape as escape:
            message = str(escape)
            if not COLLECT:
                raise AssertionError(f"cnnlab {' '.join(map(repr, argv))}\n{message}") from None
            kind = re.sub(r"ex\d+|[0-9a-f]{10,}", "N", message.splitlines()[0])[:160]  # one kind per cause, not per folder
            if kind not in found and os.environ.get("FUZZ_LOG"):
                with open(os.environ["FUZZ_LOG"], "a", encoding="utf-8") as log:
                    log.write(f"{kind}\n  cnnlab {' '.join(map(repr, argv))}\n{message[-1500:]}\n\n")
            found.setdefault(kind, (argv, message))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    one()
    if found:
        report = "\n\n".join(f"{kind}\n  cnnlab {' '.join(map(repr, argv))}\n{msg[-1200:]}" for kind, (argv, msg) in found.items())
        print(report, file=sys.stderr)
        raise AssertionError(f"{len(found)} distinct escapes in {EXAMPLE_COUNT} command lines:\n{report[:20000]}")
