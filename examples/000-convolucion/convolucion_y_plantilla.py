# %% [markdown]
# # Convolución de una imagen, tamaño de salida y plantillas (apuntes §1.2-§1.4, P.1, P.2)
# §1.2 Gaussian smoothing of a photo; §1.3 O = 1 + (2P + I - K)/S and the exercises P.1 / P.2;
# §1.4 finding a patch of the photo by normalised cross-correlation.
# Run: `python examples/000-convolucion/convolucion_y_plantilla.py` (writes into ./ejemplo-000/)

# %%
from pathlib import Path

import numpy as np

from cnnlab.ops import convolve2d, match_template, output_size
from cnnlab.ops.image import write_image
from cnnlab.ops.kernels import gaussian
from cnnlab.ops.lab import lab_picture
from cnnlab.spec import summary

out = Path("ejemplo-000")
out.mkdir(exist_ok=True)
foto = lab_picture(160)  # a photo-like picture made in code (H, W, 3) in [0, 1]

# %% §1.2: each pixel replaced by a Gaussian bell (5x5, sigma 1.5) weighted by its neighbours
suave = convolve2d(foto, gaussian(5, 1.5))
write_image(out / "suavizada.png", suave)
print("smoothed:", foto.shape, "->", suave.shape, "| detail (std of differences):",
      round(float(np.diff(foto, axis=1).std()), 3), "->", round(float(np.diff(suave, axis=1).std()), 3))

# %% §1.3: O = 1 + (2P + I - K) / S
print("O(I=28, K=5, P=0, S=1) =", output_size(28, 5, 1, 0))   # 24
print("O(I=28, K=5, P=2, S=1) =", output_size(28, 5, 1, 2))   # 28
print("O(I=28, K=3, P=1, S=2) =", output_size(28, 3, 2, 1))   # 14

# %% P.1 / P.2 with a = 28, b = 20, c = 3: one filter of 1x1xc, and one of a x b x c
for k, label in ((1, "P.1 (1x1xc)"), (None, "P.2 (axbxc)")):
    for padding in ("valid", "same"):
        spec = {"input_shape": [28, 20, 3], "layers": [
            {"type": "Conv2D", "filters": 1, "kernel_size": k or [28, 20], "padding": padding}]}
        print(label, padding, "->", summary(spec).layers[0].output_shape)
# P.1: valid (28, 20, 1), same (28, 20, 1); P.2: valid (1, 1, 1), same (28, 20, 1)

# %% §1.4: cut a patch and find it again
gris = foto.mean(axis=2)
plantilla = gris[60:92, 90:130]
mapa, (x, y, score) = match_template(gris, plantilla)
print("template found at (x, y) =", (x, y), "score", round(score, 3))   # (90, 60) 1.0
