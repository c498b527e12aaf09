# %% [markdown]
# # Un problema de regresión con imágenes reales: el ángulo de dígitos MNIST girados (P.5, BoNet)
# Writes DATA/mnist-rotado/{train,test}/NNNNN.png and train.csv / test.csv (`path,angle`), each
# digit rotated by a uniform angle in [-45, 45] degrees. DATA (where mnist/ is): the first argument,
# else $CNNLAB_DATA; the set goes into DATA too, or into OUT when given (never into the repo).
# `python examples/000-convolucion/mnist_rotado.py ../shared/data [OUT]`
# (12,000 training / 2,000 test digits; $CNNLAB_EXAMPLES_SMOKE=1: 64 / 32).

# %%
import csv
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.data import open_dataset

root = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CNNLAB_DATA", "."))
smoke = os.environ.get("CNNLAB_EXAMPLES_SMOKE", "0") not in ("", "0")
sizes = {"train": 64, "test": 32} if smoke else {"train": 12_000, "test": 2_000}
out = Path(sys.argv[2] if len(sys.argv) > 2 else root) / "mnist-rotado"
rng = np.random.default_rng(0)

# %%
for split, count in sizes.items():
    digits = open_dataset("mnist", split=split, root=root)
    (out / split).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        angle = float(rng.uniform(-45.0, 45.0))
        picture = Image.fromarray(digits.images[i][..., 0]).rotate(angle, resample=Image.BILINEAR)
        name = f"{split}/{i:05d}.png"
        picture.save(out / name)
        rows.append((name, f"{angle:.3f}"))
    with open(out / f"{split}.csv.tmp", "w", newline="") as handle:
        csv.writer(handle).writerows([("path", "angle"), *rows])
    os.replace(out / f"{split}.csv.tmp", out / f"{split}.csv")
    print(f"wrote {count} rotated digits to {out / split} and {out / (split + '.csv')}")
