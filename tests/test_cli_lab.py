"""The convolution-lab commands from the command line: filter, match, shape, demo, and bad inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.ops import correlate2d, match_template
from cnnlab.ops.image import read_image, to_uint8, write_image
from cnnlab.ops.kernels import gaussian, sobel_x
from cnnlab.ops.lab import lab_picture


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_image(tmp_path / "photo.png", lab_picture(64))


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_filter_writes_the_correlation(capsys, photo, tmp_path):
    out = tmp_path / "edges.png"
    code, stdout, _ = _run(capsys, "filter", photo, "--kernel", "sobel-x", "--gray", "-o", out)
    assert code == 0
    assert f"wrote {out} (64x64)" in stdout and "cross-correlation with sobel-x" in stdout and "scale abs" in stdout
    expected = to_uint8(correlate2d(read_image(photo, "gray"), sobel_x()), "abs")
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)


def test_filter_options_and_compare_figure(capsys, photo, tmp_path):
    out, figure = tmp_path / "blur.png", tmp_path / "fig.png"
    code, stdout, _ = _run(
        capsys, "filter", photo, "-k", "gaussian:5:1.0", "--mode", "conv", "--padding", "2,2,1,1",
        "--border", "replicate", "--stride", "2", "--dilation", "1", "-o", out, "--compare", figure,
    )  # fmt: skip
    assert code == 0, stdout
    assert "convolution with gaussian:5:1.0" in stdout and "padding 2,2,1,1" in stdout and f"wrote {figure}" in stdout
    colour = read_image(photo)
    expected = to_uint8(correlate2d(colour, gaussian(5, 1.0), (2, 2, 1, 1), "replicate", stride=2), "clip")
    written = np.asarray(Image.open(out))
    assert written.shape == (32, 31, 3)
    np.testing.assert_array_equal(written, expected)
    with Image.open(figure) as fig:
        assert fig.format == "PNG" and fig.width > 600


def test_filter_custom_kernel_text(capsys, photo, tmp_path):
    code, stdout, _ = _run(capsys, "filter", photo, "-k", "0 -1 0; -1 5 -1; 0 -1 0", "--padding", "valid", "-o", tmp_path / "s.png")
    assert code == 0 and "custom 3x3" in stdout and "(62x62x3)" in stdout


def test_match_prints_the_best_match_and_writes_images(capsys, tmp_path):
    big = lab_picture(96)
    photo = write_image(tmp_path / "photo.png", big)
    template = write_image(tmp_path / "tpl.png", big[40:64, 10:34])
    heat = tmp_path / "heat.png"
    code, stdout, _ = _run(capsys, "match", photo, template, "-o", heat)
    assert code == 0
    assert "best match: x=10 y=40 score=1.0000" in stdout
    assert np.asarray(Image.open(heat)).shape == (73, 73, 3)
    boxed = np.asarray(Image.open(tmp_path / "heat-box.png"))
    assert boxed.shape == (96, 96, 3) and tuple(boxed[40, 20]) == (0, 255, 0)


def test_match_without_output_only_prints(capsys, tmp_path):
    big = lab_picture(64)
    photo = write_image(tmp_path / "p.png", big)
    template = write_image(tmp_path / "t.png", big[5:21, 30:50])
    code, stdout, _ = _run(capsys, "match", photo, template, "--color")
    _, (x, y, score) = match_template(read_image(photo), read_image(template))
    assert code == 0 and f"x={x} y={y} score={score:.4f}" in stdout and (x, y) == (30, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "t.png"]


def test_shape_prints_shape_formula_and_parameters(capsys):
    code, stdout, _ = _run(capsys, "shape", "--input", "28x28x1", "--kernel", "5", "--filters", "32")
    assert code == 0
    assert "floor((28 + 2*0 - 1*(5-1) - 1) / 1) + 1" in stdout
    assert "O = 1 + (2P + I - K)/S = 1 + (2*0 + 28 - 5)/1 = 1 + 23 = 24" in stdout
    assert "output 24x24x32" in stdout and "= 832" in stdout


def test_shape_stride_same_and_dilation(capsys):
    code, stdout, _ = _run(capsys, "shape", "--input", "28x20x3", "--kernel", "3", "--stride", "2", "--padding", "same", "--dilation", "2")
    assert code == 0 and "output 14x10x1" in stdout and "padding same = 2,2,2,2" in stdout


# Seed 000, exercises P.1 and P.2, with a = 32, b = 24, c = 3.
@pytest.mark.parametrize(
    ("kernel", "padding", "shape"),
    [("1", "valid", "32x24x1"), ("1", "same", "32x24x1"), ("32x24", "valid", "1x1x1"), ("32x24", "same", "32x24x1")],
)
def test_shape_answers_seed_000_p1_p2(capsys, kernel, padding, shape):
    code, stdout, _ = _run(capsys, "shape", "--input", "32x24x3", "--kernel", kernel, "--padding", padding)
    assert code == 0 and f"output {shape} " in stdout


def test_demo_writes_its_files(capsys, tmp_path):
    code, stdout, _ = _run(capsys, "demo", "--out", tmp_path / "lab")
    assert code == 0
    lines = stdout.strip().splitlines()
    written = {Path(line.split(": ")[0].removeprefix("wrote ")) for line in lines}
    assert written == set((tmp_path / "lab").iterdir())
    assert len(written) == 15
    assert "best x=22 y=28 score=1.000" in stdout
    assert read_image(tmp_path / "lab" / "filter-sobel-x-stride2.png").shape == (80, 80)
    assert "output 24x24x32" in (tmp_path / "lab" / "shapes.txt").read_text()


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    write_image(tmp_path / "small.png", lab_picture(16))
    return {"broken": tmp_path / "broken.png", "small": tmp_path / "small.png", "dir": tmp_path}


BAD_INPUTS = [
    (["filter", "{dir}/missing.png", "-k", "sobel-x", "-o", "{dir}/o.png"], "missing.png: no such file"),
    (["filter", "{broken}", "-k", "sobel-x", "-o", "{dir}/o.png"], "broken.png: cannot be read as an image"),
    (["filter", "{small}", "-k", "sobelx", "-o", "{dir}/o.png"], "did you mean sobel-x"),
    (["filter", "{small}", "-k", "gaussian:4", "-o", "{dir}/o.png"], "size must be odd"),
    (["filter", "{small}", "-k", "1 2; 3", "-o", "{dir}/o.png"], "different lengths"),
    (["filter", "{small}", "-k", "box", "--stride", "0", "-o", "{dir}/o.png"], "--stride: must be an integer >= 1"),
    (["filter", "{small}", "-k", "box", "--dilation", "x", "-o", "{dir}/o.png"], "--dilation"),
    (["filter", "{small}", "-k", "box", "--padding", "big", "-o", "{dir}/o.png"], "--padding"),
    (["filter", "{small}", "-k", "box", "--border", "mirror", "-o", "{dir}/o.png"], "unknown border mode 'mirror'"),
    (["filter", "{small}", "-k", "box", "--mode", "fft", "-o", "{dir}/o.png"], "--mode"),
    (["filter", "{small}", "-k", "box:20", "--padding", "valid", "-o", "{dir}/o.png"], "output is empty"),
    (["filter", "{small}", "-k", "box", "-o", "{dir}/o.xyz"], "unknown image extension"),
    (["match", "{small}", "{dir}/missing.png"], "missing.png: no such file"),
    (["match", "{small}", "{broken}"], "broken.png: cannot be read"),
    (["shape", "--input", "28x28x1", "--kernel", "5", "--stride", "0"], "--stride"),
    (["shape", "--input", "3x3", "--kernel", "5"], "output is empty"),
    (["shape", "--input", "28xx1", "--kernel", "5"], "--input"),
    (["shape", "--input", "28x28", "--kernel", "5x5x3"], "--kernel"),
    (["shape", "--input", "28x28", "--kernel", "5", "--filters", "0"], "--filters"),
    (["demo", "--out", "{small}"], "exists and is not a folder"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(BAD_INPUTS)])
def test_bad_inputs_exit_2_with_one_line(capsys, bad_files, args, message):
    code, stdout, stderr = _run(capsys, *(a.format(**bad_files) for a in args))
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr and "Fix:" in lines[0]
    assert not (bad_files["dir"] / "o.png").exists()


def test_bad_input_through_the_real_script_has_no_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", "filter", str(tmp_path / "nope.png"), "-k", "sobel-x", "-o", str(tmp_path / "o.png")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "nope.png: no such file" in done.stderr
    assert "Traceback" not in done.stderr
