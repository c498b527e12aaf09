"""Classic image kernels of the notes, and parsing kernels from text.

Every function returns a float64 NumPy array (kh, kw). Orientation follows
OpenCV: x runs along columns (left to right), y along rows (top to bottom), and
the kernels are meant for cross-correlation (``correlate2d`` / ``cv2.filter2D``),
e.g. ``correlate2d(img, sobel_x())`` equals ``cv2.Sobel(img, cv2.CV_64F, 1, 0)``.

Sources: box, Gaussian 1-2-1 and sharpen from the slides; the Sobel pair
and the 45-degree diagonal from the textbook chapter (``filtro_horizontal`` = :func:`sobel_y`,
``filtro_vertical`` = :func:`sobel_x`, ``filtro_diagonal`` = :func:`diagonal_45`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.ops.limits import MAX_KERNEL_SIDE, brief, check_size

__all__ = [
    "KERNELS",
    "box",
    "diagonal_45",
    "diagonal_135",
    "emboss",
    "gaussian",
    "gaussian_121",
    "identity",
    "kernel_from_text",
    "laplacian",
    "parse_kernel",
    "sharpen",
    "sobel_x",
    "sobel_y",
]


def _side(size: object, what: str) -> int:
    """A kernel side: a positive integer up to :data:`~cnnlab.ops.limits.MAX_KERNEL_SIDE` (checked before allocating)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise CnnlabError(f"size must be a positive integer, got {size!r}", where=what, fix=f"use e.g. {what}:3 or {what}:5")
    return check_size(size, MAX_KERNEL_SIDE, where=what, fix=f"use a size of at most {MAX_KERNEL_SIDE}, e.g. {what}:5")


def _odd_size(size: object, what: str) -> int:
    size = _side(size, what)
    if size % 2 == 0:
        raise CnnlabError(
            f"size must be odd so the kernel has a centre pixel, got {size}",
            where=what,
            fix=f"use size {size - 1} or {size + 1} (e.g. {what}:{size + 1})",
        )
    return size


def box(size: int = 3, normalize: bool = True) -> np.ndarray:
    """Box blur: every weight 1/size² (normalised, keeps brightness) or 1 (the notes' all-ones)."""
    size = _side(size, "box")
    weights = np.ones((size, size))
    return weights / weights.size if normalize else weights


def gaussian(size: int = 5, sigma: float | None = None) -> np.ndarray:
    """Gaussian blur g[i,j] = exp(-(x_i² + y_j²) / (2σ²)) / Σ, x, y in -(size//2)..size//2.

    ``size`` must be odd. Without ``sigma``, OpenCV's default for the size,
    σ = 0.3((size - 1)/2 - 1) + 0.8. Equals the outer product of
    ``cv2.getGaussianKernel(size, sigma)`` with itself for σ > 0 (for σ <= 0 and
    sizes up to 7 OpenCV uses fixed binomial tables instead).
    """
    size = _odd_size(size, "gaussian")
    if sigma is None:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    if not (isinstance(sigma, int | float) and math.isfinite(sigma) and sigma > 0):
        raise CnnlabError(f"sigma must be a positive number, got {sigma!r}", where="gaussian", fix="use e.g. gaussian:5:1.0")
    x = np.arange(size) - size // 2
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def gaussian_121(normalize: bool = False) -> np.ndarray:
    """The notes' integer Gaussian [[1,2,1],[2,4,2],[1,2,1]] (the slides); /16 if ``normalize``."""
    weights = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0])
    return weights / 16.0 if normalize else weights


def identity(size: int = 3) -> np.ndarray:
    """1 at the centre, 0 elsewhere: the image comes back unchanged."""
    size = _odd_size(size, "identity")
    weights = np.zeros((size, size))
    weights[size // 2, size // 2] = 1.0
    return weights


def sharpen() -> np.ndarray:
    """Sharpen (the slides): [[0,-1,0],[-1,5,-1],[0,-1,0]] = identity + 4-neighbour edge boost."""
    return np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])


def sobel_x() -> np.ndarray:
    """Sobel d/dx, responds to vertical edges: [[-1,0,1],[-2,0,2],[-1,0,1]] (the textbook chapter's filtro_vertical)."""
    return np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_y() -> np.ndarray:
    """Sobel d/dy, responds to horizontal edges: [[-1,-2,-1],[0,0,0],[1,2,1]] (the textbook chapter's filtro_horizontal)."""
    return sobel_x().T.copy()


def diagonal_45() -> np.ndarray:
    """Diagonal edges (the textbook chapter's filtro_diagonal): [[-1,-2,0],[-2,0,2],[0,2,1]], gradient towards bottom-right."""
    return np.array([[-1.0, -2.0, 0.0], [-2.0, 0.0, 2.0], [0.0, 2.0, 1.0]])


def diagonal_135() -> np.ndarray:
    """The other diagonal: the textbook chapter's kernel mirrored left-right, [[0,-2,-1],[2,0,-2],[1,2,0]]."""
    return diagonal_45()[:, ::-1].copy()


def laplacian(neighbours: int = 4) -> np.ndarray:
    """Laplacian: 4-neighbour [[0,1,0],[1,-4,1],[0,1,0]] or 8-neighbour [[1,1,1],[1,-8,1],[1,1,1]]."""
    if neighbours == 4:
        return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    if neighbours == 8:
        weights = np.ones((3, 3))
        weights[1, 1] = -8.0
        return weights
    raise CnnlabError(f"neighbours must be 4 or 8, got {neighbours!r}", where="laplacian", fix="use laplacian-4 or laplacian-8")


def emboss() -> np.ndarray:
    """Emboss: [[-2,-1,0],[-1,1,1],[0,1,2]], a relief lit from the top-left."""
    return np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])


def kernel_from_text(text: str) -> np.ndarray:
    """A kernel written as rows separated by ';' or new lines, numbers by spaces or commas.

    ``kernel_from_text("1 2 1; 2 4 2; 1 2 1")`` is the notes' 1-2-1 Gaussian.
    Fractions are fine: ``"1/9 1/9 1/9; ..."``.
    """
    rows = [row for row in (r.replace(",", " ").split() for r in str(text).replace("\n", ";").split(";")) if row]
    if not rows:
        raise CnnlabError("is empty", where=f"kernel {brief(text)}", fix='write rows separated by ";", e.g. "0 -1 0; -1 5 -1; 0 -1 0"')
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        lengths = ", ".join(str(len(row)) for row in rows)
        raise CnnlabError(
            f"rows have different lengths ({lengths})",
            where=f"kernel {brief(text)}",
            fix="give every row the same number of values",
        )
    for count, axis in ((len(rows), "rows"), (widths.copy().pop(), "columns")):
        check_size(count, MAX_KERNEL_SIDE, where=f"kernel {brief(text)}", what=f"number of {axis}")
    values = []
    for number, row in enumerate(rows, start=1):
        for token in row:
            try:
                value = float(Fraction(token))
            except OverflowError:
                raise CnnlabError(
                    f"row {number}: {brief(token)} is too large for a float64 (over about 1.8e308)",
                    where=f"kernel {brief(text)}",
                    fix="use weights of a sensible size, e.g. between -1000 and 1000",
                ) from None
            except (ValueError, ZeroDivisionError):
                raise CnnlabError(
                    f"row {number}: {brief(token)} is not a number",
                    where=f"kernel {brief(text)}",
                    fix='use numbers like 1, -0.5 or 1/9 separated by spaces, rows by ";"',
                ) from None
            values.append(value)
    return np.array(values, dtype=np.float64).reshape(len(rows), widths.pop())


def _int_arg(text: str, name: str, spec: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CnnlabError(f"{name} {brief(text)} is not a whole number", where=f"kernel {brief(spec)}", fix=f"write e.g. {spec.split(':')[0]}:5") from None


# name -> (builder taking the ':'-separated arguments, usage text)
KERNELS: dict[str, tuple[Callable[[list[str], str], np.ndarray], str]] = {
    "box": (lambda a, s: box(_int_arg(a[0], "size", s) if a else 3, normalize=True), "box[:SIZE]  normalised box blur"),
    "box-ones": (lambda a, s: box(_int_arg(a[0], "size", s) if a else 3, normalize=False), "box-ones[:SIZE]  the notes' all-ones box"),
    "gaussian": (
        lambda a, s: gaussian(_int_arg(a[0], "size", s) if a else 5, _float_arg(a[1], s) if len(a) > 1 else None),
        "gaussian[:SIZE[:SIGMA]]  odd SIZE",
    ),
    "gaussian-121": (lambda a, s: gaussian_121(normalize=False), "gaussian-121  the notes' integer 1-2-1 kernel"),
    "identity": (lambda a, s: identity(_int_arg(a[0], "size", s) if a else 3), "identity[:SIZE]"),
    "sharpen": (lambda a, s: sharpen(), "sharpen"),
    "sobel-x": (lambda a, s: sobel_x(), "sobel-x  vertical edges"),
    "sobel-y": (lambda a, s: sobel_y(), "sobel-y  horizontal edges"),
    "diagonal-45": (lambda a, s: diagonal_45(), "diagonal-45  the textbook chapter's diagonal edges"),
    "diagonal-135": (lambda a, s: diagonal_135(), "diagonal-135  the mirrored diagonal"),
    "laplacian-4": (lambda a, s: laplacian(4), "laplacian-4"),
    "laplacian-8": (lambda a, s: laplacian(8), "laplacian-8"),
    "emboss": (lambda a, s: emboss(), "emboss"),
}
_ALIASES = {"sobel_x": "sobel-x", "sobel_y": "sobel-y", "laplacian": "laplacian-4", "gauss": "gaussian", "blur": "box"}
_TAKES_ARGS = {"box", "box-ones", "gaussian", "identity"}


def _float_arg(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CnnlabError(f"sigma {brief(text)} is not a number", where=f"kernel {brief(spec)}", fix="write e.g. gaussian:5:1.0") from None


def _looks_numeric(spec: str) -> bool:
    return any(ch.isdigit() for ch in spec) and all(ch.isdigit() or ch in " \t\n;,.-+/eE" for ch in spec)


def parse_kernel(spec: str) -> tuple[np.ndarray, str]:
    """A kernel from a command-line spec, and a short name for it.

    ``spec`` is a name with optional ':' arguments (``sobel-x``, ``box:5``,
    ``gaussian:5:1.0``; see :data:`KERNELS`) or numbers (``"0 -1 0; -1 5 -1; 0 -1 0"``).
    Unknown names raise a :class:`CnnlabError` listing the closest valid ones.
    """
    text = str(spec).strip()
    if _looks_numeric(text):
        weights = kernel_from_text(text)
        return weights, f"custom {weights.shape[0]}x{weights.shape[1]}"
    name, *args = text.lower().split(":")
    name = _ALIASES.get(name, name)
    if name not in KERNELS:
        close = difflib.get_close_matches(name, list(KERNELS), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise CnnlabError(
            f"unknown kernel {brief(spec)}",
            where="kernel",
            fix=f"{hint}valid names: {', '.join(KERNELS)}; or numbers like \"0 -1 0; -1 5 -1; 0 -1 0\"",
        )
    if args and name not in _TAKES_ARGS:
        raise CnnlabError(f"{name} takes no ':' arguments", where=f"kernel {brief(spec)}", fix=f"write just {name}")
    builder, _ = KERNELS[name]
    try:
        weights = builder(args, text)
    except CnnlabError as error:
        if error.where is not None and error.where.startswith("kernel "):
            raise
        message = str(error).removeprefix(f"{error.where}: ").removesuffix(f" Fix: {error.fix}")
        raise CnnlabError(message, where=f"kernel {brief(spec)}", fix=error.fix) from None
    return weights, text.lower() if args else name
