"""The convolution lab: what the ``filter``, ``match``, ``shape`` and ``demo`` commands do.

Each function takes command-line style arguments (strings are parsed here, with
errors naming the option), does the work with :mod:`cnnlab.ops`, writes files
atomically and returns what it did, so the CLI only prints.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text
from cnnlab.ops.arithmetic import explain_output_size, output_size, same_padding
from cnnlab.ops.conv import convolve2d, correlate2d, resolve_border, resolve_padding
from cnnlab.ops.figures import colorize, save_compare_figure
from cnnlab.ops.image import draw_box, read_image, write_image
from cnnlab.ops.kernels import parse_kernel
from cnnlab.ops.limits import MAX_SIZE, brief, check_size
from cnnlab.ops.template import match_template

__all__ = [
    "FilterResult",
    "MatchResult",
    "filter_image",
    "lab_picture",
    "match_images",
    "parse_int_pair",
    "parse_padding",
    "parse_shape",
    "run_demo",
    "shape_report",
]


# --- parsing the options -----------------------------------------------------


def parse_int_pair(text: str | int, option: str, minimum: int = 1) -> tuple[int, int]:
    """``"2"`` -> (2, 2), ``"2,1"`` or ``"2x1"`` -> (2, 1); each >= minimum."""
    parts = str(text).replace("x", ",").split(",")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < minimum:
        raise CnnlabError(
            f"must be an integer >= {minimum} or ROWS,COLS, got {brief(text)}",
            where=option,
            fix=f"e.g. {option} {max(minimum, 1)} or {option} 2,1",
        )
    for value in values:
        check_size(value, MAX_SIZE, where=option, what="value")
    return values[0], values[1]


def parse_padding(text: str | int) -> str | tuple[int, int, int, int]:
    """``same`` / ``valid`` / ``full``, ``N`` or ``T,B,L,R`` from the command line."""
    value = str(text).strip().lower()
    if value in ("same", "valid", "full"):
        return value
    parts = value.split(",")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        numbers *= 4
    if len(numbers) != 4 or min(numbers) < 0:
        raise CnnlabError(
            f"must be same, valid, full, N >= 0 or TOP,BOTTOM,LEFT,RIGHT, got {brief(text)}",
            where="--padding",
            fix="e.g. --padding same, --padding 1 or --padding 1,1,2,2",
        )
    for number in numbers:
        check_size(number, MAX_SIZE, where="--padding", what="padding")
    return (numbers[0], numbers[1], numbers[2], numbers[3])


def parse_shape(text: str, option: str = "--input") -> tuple[int, ...]:
    """``"28x28x1"`` (H x W x C) or ``"28x28"`` (C = 1) or ``"5"`` (square, for kernels)."""
    parts = str(text).lower().replace("×", "x").replace(",", "x").split("x")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if not values or len(values) > 3 or min(values) < 1:
        raise CnnlabError(
            f"must be positive integers joined by 'x', got {brief(text)}",
            where=option,
            fix="e.g. --input 28x28x1 (height x width x channels) or --kernel 5 / 5x3",
        )
    for value in values:
        check_size(value, MAX_SIZE, where=option, what="size")
    return values


# --- filter ------------------------------------------------------------------


@dataclass
class FilterResult:
    """What ``filter_image`` did."""

    output: Path
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel_name: str
    kernel: np.ndarray
    mode: str
    padding: tuple[int, int, int, int]
    border: str
    stride: tuple[int, int]
    dilation: tuple[int, int]
    scale: str
    compare: Path | None = None

    def summary(self) -> str:
        shape = "x".join(str(n) for n in self.output_shape)
        lines = [
            f"wrote {self.output} ({shape}): {'convolution' if self.mode == 'conv' else 'cross-correlation'} "
            f"with {self.kernel_name} ({self.kernel.shape[0]}x{self.kernel.shape[1]}), padding "
            f"{','.join(map(str, self.padding))} (top,bottom,left,right), border {self.border}, "
            f"stride {_pair_text(self.stride)}, dilation {_pair_text(self.dilation)}, scale {self.scale}"
        ]
        if self.compare is not None:
            lines.append(f"wrote {self.compare} (before / kernel / after)")
        return "\n".join(lines)


def _pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]},{pair[1]}"


def _auto_scale(kernel: np.ndarray) -> str:
    """abs for edge kernels (weights sum to 0), minmax when brightness changes, else clip."""
    total = float(kernel.sum())
    if abs(total) < 1e-9:
        return "abs"
    return "clip" if abs(total - 1.0) < 1e-6 else "minmax"


def filter_image(
    image: str | os.PathLike[str],
    kernel: str,
    output: str | os.PathLike[str],
    *,
    mode: str = "corr",
    padding: str = "same",
    border: str = "reflect",
    stride: str = "1",
    dilation: str = "1",
    gray: bool = False,
    scale: str = "auto",
    compare: str | os.PathLike[str] | None = None,
) -> FilterResult:
    """Filter an image file with a kernel spec and write the result (and a figure)."""
    if mode not in ("conv", "corr"):
        raise CnnlabError(f"unknown mode {mode!r}", where="--mode", fix="use conv (flips the kernel) or corr (does not)")
    if scale not in ("auto", "clip", "minmax", "abs"):
        raise CnnlabError(f"unknown scale {scale!r}", where="--scale", fix="use auto, clip, minmax or abs")
    weights, name = parse_kernel(kernel)
    strides = parse_int_pair(stride, "--stride")
    dilations = parse_int_pair(dilation, "--dilation")
    pad_spec = parse_padding(padding)
    border = resolve_border(border)
    picture = read_image(image, "gray" if gray else None)
    pads = resolve_padding(pad_spec, (weights.shape[0], weights.shape[1]), dilations)
    operation = convolve2d if mode == "conv" else correlate2d
    result = operation(picture, weights, pads, border, strides, dilations)
    chosen = _auto_scale(weights) if scale == "auto" else scale
    written = write_image(output, result, chosen)
    figure = None
    if compare is not None:
        title = f"{'convolution' if mode == 'conv' else 'cross-correlation'} with {name}"
        figure = save_compare_figure(compare, picture, weights, result, title=title, scale=chosen)
    return FilterResult(
        written, picture.shape, result.shape, name, weights, mode, pads, border, strides, dilations, chosen, figure
    )


# --- match -------------------------------------------------------------------


@dataclass
class MatchResult:
    """What ``match_images`` found and wrote."""

    x: int
    y: int
    score: float
    template_shape: tuple[int, int]
    written: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        h, w = self.template_shape
        lines = [f"best match: x={self.x} y={self.y} score={self.score:.4f} (box {w}x{h} from the top-left corner)"]
        lines += [f"wrote {path}" for path in self.written]
        return "\n".join(lines)


def match_images(
    image: str | os.PathLike[str],
    template: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    box_output: str | os.PathLike[str] | None = None,
    color: bool = False,
) -> MatchResult:
    """Find ``template`` in ``image`` (files); optionally write the heat map and the boxed photo.

    The heat map is the TM_CCOEFF_NORMED score map coloured over [-1, 1] (size
    (H - h + 1) x (W - w + 1)); the boxed photo is written to ``box_output``, by
    default beside the heat map as ``<name>-box.png``.
    """
    mode = "rgb" if color else "gray"
    photo = read_image(image, mode)
    patch = read_image(template, mode)
    scores, (x, y, score) = match_template(photo, patch)
    result = MatchResult(x, y, score, (patch.shape[0], patch.shape[1]))
    if output is not None:
        heat = Path(output)
        result.written.append(write_image(heat, colorize(scores)))
        if box_output is None:
            box_output = heat.with_name(f"{heat.stem}-box.png")
    if box_output is not None:
        shown = photo if color else read_image(image)  # draw on the photo as it is, colour or gray
        boxed = draw_box(shown, x, y, patch.shape[1], patch.shape[0], color=(1.0, 0.0, 0.0) if shown.ndim == 2 else (0.0, 1.0, 0.0))
        result.written.append(write_image(box_output, boxed))
    return result


# --- shape -------------------------------------------------------------------


def shape_report(
    input_shape: str,
    kernel: str,
    *,
    stride: str = "1",
    padding: str = "valid",
    dilation: str = "1",
    filters: int = 1,
) -> str:
    """The output shape of a Conv2D layer, the formula worked per axis, and its parameters.

    ``input_shape`` H x W x C (C defaults to 1); ``kernel`` K or KH x KW; the
    layer has ``filters`` kernels of KH x KW x C plus one bias each, so the output
    has ``filters`` channels (Keras Conv2D semantics).
    """
    dims = parse_shape(input_shape, "--input")
    if len(dims) == 1:
        raise CnnlabError(f"needs at least height and width, got {brief(input_shape)}", where="--input", fix="e.g. --input 28x28x1")
    height, width, channels = (*dims, 1) if len(dims) == 2 else dims
    ksize = parse_shape(kernel, "--kernel")
    if len(ksize) > 2:
        raise CnnlabError(
            f"is the spatial size K or KHxKW, got {brief(kernel)}",
            where="--kernel",
            fix="give e.g. --kernel 5 or --kernel 28x28; the depth is always the input's channels",
        )
    kh, kw = (ksize[0], ksize[0]) if len(ksize) == 1 else ksize
    if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
        raise CnnlabError(f"must be a positive integer, got {filters!r}", where="--filters", fix="e.g. --filters 32")
    check_size(filters, MAX_SIZE, where="--filters", what="filter count")
    sh, sw = parse_int_pair(stride, "--stride")
    dh, dw = parse_int_pair(dilation, "--dilation")
    pad_spec = parse_padding(padding)
    if pad_spec == "same":
        pads = (*same_padding(kh, dh), *same_padding(kw, dw))
    else:
        pads = resolve_padding(pad_spec, (kh, kw), (dh, dw))
    axes = []
    for axis, size, k, s, before, after, d, option in (
        ("height", height, kh, sh, pads[0], pads[1], dh, "H"),
        ("width", width, kw, sw, pads[2], pads[3], dw, "W"),
    ):
        try:
            result = output_size(size, k, s, (before, after), d)
        except CnnlabError as error:
            raise CnnlabError(f"{axis}: {error}", where="shape") from None
        axes.append((result, explain_output_size(size, k, s, (before, after), d, axis=axis)))
    (out_h, text_h), (out_w, text_w) = axes
    weights = kh * kw * channels * filters
    pad_name = padding if isinstance(pad_spec, str) else ",".join(map(str, pads))
    lines = [
        f"input {height}x{width}x{channels} (height x width x channels); {filters} filter(s) of "
        f"{kh}x{kw}x{channels}; stride {_pair_text((sh, sw))}; dilation {_pair_text((dh, dw))}; "
        f"padding {pad_name} = {pads[0]},{pads[1]},{pads[2]},{pads[3]} (top,bottom,left,right)",
    ]
    if pad_spec == "same":
        lines.append(
            f"  'same' pads D(K-1) pixels in total per axis (the extra one on top/left when odd), "
            f"so O = ceil(I/S) = {math.ceil(height / sh)}x{math.ceil(width / sw)}"
        )
    lines += [text_h]
    lines += ["width: same numbers as height"] if (height, kh, sh, pads[:2], dh) == (width, kw, sw, pads[2:], dw) else [text_w]
    lines += [
        f"output {out_h}x{out_w}x{filters} (height x width x filters; Keras shape (None, {out_h}, {out_w}, {filters}))",
        f"parameters: {kh}*{kw}*{channels}*{filters} weights + {filters} biases = {weights + filters}",
    ]
    return "\n".join(lines)


# --- demo --------------------------------------------------------------------


def lab_picture(size: int = 160) -> np.ndarray:
    """A colour test picture made in code: gradient sky, disc, square, triangle, stripes.

    Deterministic (fixed seed), float32 (size, size, 3) in [0, 1].
    """
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32) / size
    picture = np.stack([0.55 + 0.35 * rows, 0.65 + 0.25 * cols, 0.85 - 0.25 * rows], axis=2)
    disc = (rows - 0.32) ** 2 + (cols - 0.3) ** 2 < 0.16**2
    picture[disc] = (0.9, 0.45, 0.05)
    square = (rows > 0.55) & (rows < 0.85) & (cols > 0.12) & (cols < 0.42)
    picture[square] = (0.8, 0.15, 0.15)
    triangle = (rows > 0.5) & (rows < 0.9) & (np.abs(cols - 0.72) < (rows - 0.5) * 0.5)
    picture[triangle] = (0.15, 0.35, 0.75)
    stripes = (rows < 0.4) & (cols > 0.58) & (cols < 0.92) & (((rows + cols) * size / 6).astype(int) % 2 == 0)
    picture[stripes] = (0.1, 0.1, 0.1)
    noise = np.random.default_rng(0).normal(0.0, 0.02, picture.shape).astype(np.float32)
    return np.clip(picture + noise, 0.0, 1.0)


_DEMO_FILTERS = [
    ("box:5", "box blur 5x5"),
    ("gaussian:5:1.0", "Gaussian blur 5x5, sigma 1"),
    ("sharpen", "sharpen"),
    ("sobel-x", "Sobel x: vertical edges"),
    ("sobel-y", "Sobel y: horizontal edges"),
    ("diagonal-45", "the textbook chapter's diagonal edges"),
    ("laplacian-4", "Laplacian, 4 neighbours"),
    ("emboss", "emboss"),
]


def run_demo(out_dir: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """The short lab of the README on :func:`lab_picture`; returns (file, what it shows)."""
    if not str(out_dir).strip():
        raise CnnlabError("is empty", where="--out", fix="give a folder name for the demo files, e.g. --out lab-demo")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise CnnlabError("exists and is not a folder", where=str(folder), fix="give a folder name for --out")
    written: list[tuple[Path, str]] = []
    picture = lab_picture()
    source = write_image(folder / "picture.png", picture)
    written.append((source, "the test picture, made in code (160x160 colour)"))

    for spec, what in _DEMO_FILTERS:
        name = spec.split(":")[0]
        done = filter_image(source, spec, folder / f"filter-{name}.png", gray=True)
        written.append((done.output, f"{what} (scale {done.scale})"))
    done = filter_image(
        source, "sobel-x", folder / "filter-sobel-x-stride2.png", gray=True, stride="2", compare=folder / "compare-sobel-x.png"
    )
    written.append((done.output, "Sobel x with stride 2: every 2nd pixel, 80x80"))
    assert done.compare is not None
    written.append((done.compare, "before / kernel / after figure"))

    # Template matching: cut the disc out of the photo and find it again.
    gray = read_image(source, "gray")
    top, left, size = 28, 22, 48
    template = write_image(folder / "template.png", gray[top : top + size, left : left + size])
    written.append((template, f"template: a {size}x{size} crop at x={left}, y={top}"))
    match = match_images(source, template, folder / "match-heat.png")
    written.append((match.written[0], f"normalised cross-correlation map; best x={match.x} y={match.y} score={match.score:.3f}"))
    written.append((match.written[1], "the picture with the best match boxed"))

    report = "\n\n".join(
        [
            "The Keras lab: a 28x28 image and a 5x5 window give 24x24 (32 filters as in the practice net):",
            shape_report("28x28x1", "5", filters=32),
            "Stride 2 with 'same' padding halves the size:",
            shape_report("28x28x1", "3", stride="2", padding="same", filters=16),
            "The convolution notes, exercise P.1: a 1x1xC kernel keeps height and width (valid and same):",
            shape_report("32x24x3", "1", padding="valid"),
            "The convolution notes, exercise P.2: a kernel as large as the image gives 1x1 (valid) or keeps the size (same):",
            shape_report("32x24x3", "32x24", padding="valid"),
            shape_report("32x24x3", "32x24", padding="same"),
        ]
    )
    written.append((atomic_write_text(folder / "shapes.txt", report + "\n"), "output shapes worked step by step"))
    return written
