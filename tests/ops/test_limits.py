"""Issue 13: what a user types into the lab commands never gives a traceback.

Every case runs the real command line in one process (``cnnlab.cli.main``) and
checks the message shape: exit 2, one line on stderr, the argument or file
named, the bound or the reason, and a fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.ops.limits import MAX_KERNEL_SIDE, MAX_SIZE, check_bytes, format_bytes
from cnnlab.errors import CnnlabError


@pytest.fixture
def picture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "a.png"
    Image.fromarray((np.arange(20 * 20 * 3) % 256).astype(np.uint8).reshape(20, 20, 3)).save(path)
    return path



@pytest.mark.parametrize(
    ("kernel", "expected"),
    [
        ("box:10000000000", "error: kernel 'box:10000000000': size 10000000000 is over the limit of 1025 Fix: use a size of at most 1025, e.g. box:5"),
        ("gaussian:9999999", "error: kernel 'gaussian:9999999': size 9999999 is over the limit of 1025 Fix: use a size of at most 1025, e.g. gaussian:5"),
        ("identity:5001", "error: kernel 'identity:5001': size 5001 is over the limit of 1025 Fix: use a size of at most 1025, e.g. identity:5"),
        ("box-ones:1026", "error: kernel 'box-ones:1026': size 1026 is over the limit of 1025 Fix: use a size of at most 1025, e.g. box:5"),
        (
            "1e400",
            "error: kernel '1e400': row 1: '1e400' is too large for a float64 (over about 1.8e308) "
            "Fix: use weights of a sensible size, e.g. between -1000 and 1000",
        ),
    ],
)
def test_kernel_sizes_are_bounded(picture: Path, refused, kernel: str, expected: str) -> None:
    assert refused("filter", str(picture), "-k", kernel, "-o", "out.png") == expected
    assert not Path("out.png").exists()


def test_the_bound_itself_is_accepted(picture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert MAX_KERNEL_SIDE == 1025
    assert main(["filter", str(picture), "-k", "box:25", "-o", "out.png", "--padding", "valid", "--gray"]) == 2  # 25 > 20: empty
    capsys.readouterr()
    assert main(["filter", str(picture), "-k", "box:3", "-o", "out.png", "--gray"]) == 0
    assert Image.open("out.png").size == (20, 20)


def test_a_long_kernel_text_is_bounded_and_cut_in_the_message(picture: Path, refused) -> None:
    text = " ".join(["1"] * 2000)
    line = refused("filter", str(picture), "-k", text, "-o", "out.png")
    assert "number of columns 2000 is over the limit of 1025" in line
    assert len(line) < 250, line  # the 4,000-character kernel is not echoed whole
    assert "(3999 characters)" in line


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--stride", "10000000000000000000000", f"error: --stride: value 10000000000000000000000 is over the limit of {MAX_SIZE} Fix: use a value of at most {MAX_SIZE}"),
        ("--dilation", "99999999999", f"error: --dilation: value 99999999999 is over the limit of {MAX_SIZE} Fix: use a value of at most {MAX_SIZE}"),
        ("--padding", "99999999999", f"error: --padding: padding 99999999999 is over the limit of {MAX_SIZE} Fix: use a padding of at most {MAX_SIZE}"),
    ],
)
def test_filter_steps_and_padding_are_bounded(picture: Path, refused, option: str, value: str, expected: str) -> None:
    assert refused("filter", str(picture), "-k", "sobel-x", "-o", "out.png", option, value) == expected


def test_padding_the_machine_cannot_hold_is_refused_before_allocating(picture: Path, refused) -> None:
    line = refused("filter", str(picture), "-k", "sobel-x", "-o", "out.png", "--padding", "10000000")
    # 3 planes of (20 + 2e7)^2 float32 pixels, padded and out: 2 * 3 * 4 * (20000020)^2 bytes
    assert line.startswith(
        "error: correlate2d: padding 10000000,10000000,10000000,10000000 (top,bottom,left,right) around a 20x20 image "
        f"would take {format_bytes(2 * 3 * 4 * 20000020**2)}, more than the "
    ), line
    assert line.endswith("of memory available Fix: use less padding (e.g. padding 'same') or a smaller kernel / dilation")


def test_check_bytes_names_the_amounts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cnnlab.ops.limits.available_memory", lambda: 1024**3)
    check_bytes(1024**3, where="w", what="it", fix="f")  # exactly what is there: accepted
    with pytest.raises(CnnlabError) as caught:
        check_bytes(25 * 1024**4, where="spec", what="the weights", fix="use fewer units")
    assert str(caught.value) == "spec: the weights would take 25.0 TiB, more than the 1.0 GiB of memory available Fix: use fewer units"


def test_shape_sizes_are_bounded(refused) -> None:
    assert refused("shape", "-i", "100000000000x10x3", "-k", "5") == (
        f"error: --input: size 100000000000 is over the limit of {MAX_SIZE} Fix: use a size of at most {MAX_SIZE}"
    )
    assert refused("shape", "-i", "28x28x1", "-k", "5", "--filters", "100000000000000000000") == (
        f"error: --filters: filter count 100000000000000000000 is over the limit of {MAX_SIZE} Fix: use a filter count of at most {MAX_SIZE}"
    )


def test_decompression_bomb_is_one_line(picture: Path, refused, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow raises above 2 * MAX_IMAGE_PIXELS and warns above it: with a limit of 100, the 400-pixel image is a bomb.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    expected = f"error: {picture}: is too large to decode safely: Image size (400 pixels) exceeds limit of 200 pixels Fix: give a smaller image (resize it first)"
    assert refused("match", str(picture), str(picture)) == expected
    assert refused("filter", str(picture), "-k", "sharpen", "-o", "out.png") == expected
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 > 300: only the warning; refused all the same
    line = refused("match", str(picture), str(picture))
    assert line.startswith(f"error: {picture}: is too large to decode safely: Image size (400 pixels) exceeds limit of 300 pixels")


def test_output_extension_pillow_cannot_write(picture: Path, refused) -> None:
    assert refused("filter", str(picture), "-k", "sharpen", "-o", "x.psd") == (
        "error: x.psd: PSD images cannot be written, extension '.psd' Fix: name the output file .png (lossless) or "
        "another writable extension: .png .jpg .jpeg .bmp .gif .tif .tiff .webp .ppm .pgm .tga"
    )
    line = refused("filter", str(picture), "-k", "sharpen", "-o", "x.nothing")
    assert line.startswith("error: x.nothing: unknown image extension '.nothing' Fix: name the output file .png")
    assert not list(Path.cwd().glob("x.*"))


def test_paths_too_long_or_folders(picture: Path, refused) -> None:
    long_name = "a" * 300 + ".png"
    line = refused("filter", long_name, "-k", "sharpen", "-o", "out.png")
    assert line.endswith("is too long for the file system (304 characters) Fix: use a shorter path (each folder or file name at most 255 bytes)")
    line = refused("filter", str(picture), "-k", "sharpen", "-o", long_name)
    assert line.endswith("is too long for the file system (304 characters) Fix: use a shorter path (each folder or file name at most 255 bytes)")
    assert refused("match", ".", str(picture)) == "error: .: is not a file Fix: give the path of an image file, not a folder"
    Path("folder.png").mkdir()
    assert refused("filter", str(picture), "-k", "sharpen", "-o", "folder.png") == (
        "error: folder.png: is a folder; a file is written here Fix: give a file name, e.g. folder.png/out.png"
    )
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["a.png", "folder.png"]  # nothing half-written left


def test_demo_needs_a_folder_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused) -> None:
    # `--out ''` used to write the demo's 16 files into the current folder (found by tests/test_fuzz_cli.py)
    monkeypatch.chdir(tmp_path)
    for empty in ("", "  "):
        assert refused("demo", "--out", empty) == "error: --out: is empty Fix: give a folder name for the demo files, e.g. --out lab-demo"
    assert list(tmp_path.iterdir()) == []
