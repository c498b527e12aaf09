"""read_image / write_image round trips for the formats Pillow reads, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.errors import CnnlabError
from cnnlab.ops.image import draw_box, read_image, to_uint8, write_image

RNG = np.random.default_rng(0)
RGB = (RNG.random((5, 7, 3)) * 255).astype(np.uint8)
GRAY = (RNG.random((5, 7)) * 255).astype(np.uint8)


def test_rgb_png(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "a.png")
    array = read_image(tmp_path / "a.png")
    assert array.shape == (5, 7, 3) and array.dtype == np.float32
    np.testing.assert_allclose(array * 255, RGB, atol=1e-3)
    gray = read_image(tmp_path / "a.png", "gray")
    np.testing.assert_allclose(gray, (RGB / 255.0) @ [0.299, 0.587, 0.114], atol=1e-6)


def test_gray_png_and_rgb_mode(tmp_path):
    Image.fromarray(GRAY).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (5, 7)
    rgb = read_image(tmp_path / "g.png", "rgb")
    assert rgb.shape == (5, 7, 3) and np.array_equal(rgb[..., 0], rgb[..., 2])
    np.testing.assert_allclose(rgb[..., 1] * 255, GRAY, atol=1e-3)


def test_16_bit_keeps_its_precision(tmp_path):
    values = (RNG.random((4, 6)) * 65535).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    np.testing.assert_allclose(read_image(tmp_path / "g16.png") * 65535, values, atol=0.02)


def test_palette_images(tmp_path):
    Image.fromarray(RGB).convert("P").save(tmp_path / "p.png")
    palette = read_image(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")) / 255.0
    np.testing.assert_allclose(palette, expected, atol=1e-6)
    Image.fromarray(GRAY).convert("P").save(tmp_path / "pg.png")
    assert read_image(tmp_path / "pg.png").shape == (5, 7)  # a palette of grays is gray


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent
    rgba[1, :] = (0, 0, 255, 51)  # 20 % blue
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    array = read_image(tmp_path / "rgba.png")
    np.testing.assert_allclose(array[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(array[0, 1], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(array[1, 0], [0.8, 0.8, 1.0], atol=1e-6)


def test_bilevel_and_cmyk(tmp_path):
    Image.fromarray(GRAY > 128).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), (GRAY > 128).astype(np.float32))
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "c.tif")
    # Pillow's RGB -> CMYK is C = 255 - R, ... with K = 0, and back exactly: the colours survive.
    cmyk = read_image(tmp_path / "c.tif")
    assert cmyk.shape == (5, 7, 3)
    np.testing.assert_allclose(cmyk, RGB / 255.0, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    picture = Image.fromarray(RGB)
    exif = picture.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    picture.save(tmp_path / "e.png", exif=exif)
    upright = read_image(tmp_path / "e.png")
    assert upright.shape == (7, 5, 3)
    np.testing.assert_allclose(upright * 255, np.rot90(RGB, k=-1), atol=1e-3)


def test_write_round_trip_and_no_temp_files(tmp_path):
    values = RNG.random((6, 9, 3)).astype(np.float32)
    write_image(tmp_path / "out" / "x.png", values)
    back = read_image(tmp_path / "out" / "x.png")
    np.testing.assert_allclose(back, values, atol=0.5 / 255 + 1e-6)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.png"]
    write_image(tmp_path / "t.png", torch.rand(4, 4, 1))
    assert read_image(tmp_path / "t.png").shape == (4, 4)


def test_scales():
    values = np.array([[-2.0, 0.0], [0.5, 2.0]])
    np.testing.assert_array_equal(to_uint8(values, "clip"), [[0, 0], [128, 255]])
    np.testing.assert_array_equal(to_uint8(values, "minmax"), [[0, 128], [159, 255]])
    np.testing.assert_array_equal(to_uint8(values, "abs"), [[255, 0], [64, 255]])
    np.testing.assert_array_equal(to_uint8(np.full((2, 2), 3.0), "minmax"), np.zeros((2, 2)))
    with pytest.raises(CnnlabError, match="unknown scale"):
        to_uint8(values, "log")  # type: ignore[arg-type]
    with pytest.raises(CnnlabError, match="NaN"):
        to_uint8(np.array([np.nan]))


def test_read_errors_name_the_path(tmp_path):
    with pytest.raises(CnnlabError, match="missing.png: no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(CnnlabError, match="bad.png: cannot be read as an image"):
        read_image(tmp_path / "bad.png")
    Image.fromarray(RGB).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:60])
    with pytest.raises(CnnlabError, match="cut.png: cannot be read"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(CnnlabError, match="is not a file"):
        read_image(tmp_path)
    with pytest.raises(CnnlabError, match="unknown mode"):
        read_image(tmp_path / "bad.png", "cmyk")  # type: ignore[arg-type]


def test_write_errors(tmp_path):
    with pytest.raises(CnnlabError, match="unknown image extension '.xyz'"):
        write_image(tmp_path / "a.xyz", np.zeros((2, 2)))
    with pytest.raises(CnnlabError, match="not \\(H, W\\)"):
        write_image(tmp_path / "a.png", np.zeros((2, 2, 5)))


def test_draw_box():
    canvas = draw_box(np.zeros((10, 12)), x=2, y=3, width=5, height=4, thickness=1)
    assert canvas.shape == (10, 12, 3)
    red = canvas[..., 0] == 1.0
    assert red[3, 2:7].all() and red[6, 2:7].all() and red[3:7, 2].all() and red[3:7, 6].all()
    assert red.sum() == 2 * 5 + 2 * 2 and not red[4:6, 3:6].any()
