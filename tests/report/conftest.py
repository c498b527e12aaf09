"""Tiny runs the report tests read: a 6-class image folder and an image -> number CSV, trained 2 epochs.

Each is trained once per session (a few seconds on two cores) into a temporary
folder; tests that change a run copy it first.
"""

from __future__ import annotations

import base64
import io
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# A class name that is user data with markup in it: the page must escape it.
CLASSES = ["circle", "bars", "dots", "grid", "a&b <i>", "plain"]
SIZE = 16


def _image(kind: int, rng: np.random.Generator) -> np.ndarray:
    """A 16x16 RGB picture whose pattern (and hue) says its class, with noise."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    base = rng.uniform(0, 60, (SIZE, SIZE, 3))
    masks = [
        (x - 7.5) ** 2 + (y - 7.5) ** 2 < 30,
        (x // 3) % 2 == 0,
        ((x % 5) == 2) & ((y % 5) == 2),
        ((x % 4) == 0) | ((y % 4) == 0),
        x > y,
        np.zeros((SIZE, SIZE), bool),
    ]
    colour = np.array([[255, 60, 60], [60, 255, 60], [60, 60, 255], [255, 255, 60], [255, 60, 255], [60, 255, 255]][kind])
    image = base + masks[kind][..., None] * colour * 0.8
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def make_folder(root: Path, per_class: int = 10, test_per_class: int = 0) -> Path:
    """One subfolder per class (``root/train/<class>`` and ``root/test/<class>`` with a test split)."""
    rng = np.random.default_rng(0)
    splits = [("train", per_class), ("test", test_per_class)] if test_per_class else [("", per_class)]
    for split, count in splits:
        for k, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(_image(k, rng)).save(folder / f"{name}-{i}.png")
    (root / splits[0][0] / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # skipped, with its reason
    return root


def make_csv(root: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(1)
    root.mkdir(parents=True)
    lines = ["path,value"]
    for i in range(n):
        level = float(rng.uniform(0, 1))
        image = np.full((SIZE, SIZE, 3), level * 255, dtype=np.float64) + rng.normal(0, 5, (SIZE, SIZE, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / f"img{i}.png")
        lines.append(f"img{i}.png,{level:.4f}")
    (root / "targets.csv").write_text("\n".join(lines) + "\n")
    return root / "targets.csv"


@pytest.fixture(scope="session")
def report_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report-cache")


@pytest.fixture(scope="session")
def classification_run(tmp_path_factory: pytest.TempPathFactory, report_data: Path) -> Path:
    """A finished 2-epoch run on the 6-class folder, with augmentation; train wrote its report."""
    from cnnlab.train.api import fit

    base = tmp_path_factory.mktemp("cls")
    data = make_folder(base / "images", test_per_class=4)
    run = base / "run"
    fit(str(data), out=run, epochs=2, batch_size=16, verbose=0, data_root=report_data, report=True,
        augment={"horizontal_flip": True, "rotation_range": 10}, **{"data.val_split": 0.25})
    return run


@pytest.fixture(scope="session")
def regression_run(tmp_path_factory: pytest.TempPathFactory, report_data: Path) -> Path:
    from cnnlab.train.api import fit

    base = tmp_path_factory.mktemp("reg")
    csv = make_csv(base / "images")
    run = base / "run"
    fit(str(csv), out=run, epochs=2, batch_size=8, verbose=0, data_root=report_data, report=True, **{"data.val_split": 0.25})
    return run


def copy_run(run: Path, where: Path) -> Path:
    target = where / run.name
    shutil.copytree(run, target)
    return target


class Page(HTMLParser):
    """What the tests read from a page: ids, every src / href / style, the text, data-value cells."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.styles: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.values: list[float] = []
        self._in_style = False
        self._stack: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("id"):
            self.ids.add(a["id"])
        for key in ("src", "href", "action", "poster", "data"):
            if a.get(key) is not None:
                self.urls.append((tag, key, a[key]))
        if a.get("style"):
            self.styles.append(a["style"])
        if tag == "style":
            self._in_style = True
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = []
        if a.get("data-value") is not None and self._cell is not None:
            self._cell.append(f"\x00{a['data-value']}")

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            exact = [c[1:] for c in self._cell if c.startswith("\x00")]
            self._row.append(exact[0] if exact else "".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)
        else:
            self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def decode_data_uri(uri: str) -> Image.Image:
    head, _, payload = uri.partition(",")
    assert head == "data:image/png;base64", head[:40]
    image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
    image.load()
    return image
