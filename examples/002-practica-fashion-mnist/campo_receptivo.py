# %% [markdown]
# # Campos receptivos locales, pesos compartidos y max pooling (práctica)
# A 28x28 input seen through a 5x5 window gives 24x24 hidden neurons; sharing one 5x5 filter
# needs 25 weights (plus a bias) instead of 5x5x24x24 = 14,400. Max pooling 2x2 takes the
# 12x12 picture of a "7" to 6x6 and keeps the digit.
# Run: `python examples/002-practica-fashion-mnist/campo_receptivo.py`

# %%
import numpy as np
import torch

from cnnlab.nn.pooling import MaxPool2d
from cnnlab.ops import output_size

side = output_size(28, 5)
print("28x28 input, 5x5 window ->", f"{side}x{side}", "=", side * side, "neurons")   # 24x24 = 576
print("weights without sharing:", f"{5 * 5 * side * side:,}", "shared:", 5 * 5)       # 14,400 vs 25

# %% The 12x12 "7"
siete = np.zeros((12, 12), dtype=np.float32)
siete[2, 2:10] = 1           # the top bar
for row in range(3, 11):     # the diagonal stroke
    siete[row, max(9 - (row - 3), 3)] = 1
pooled = MaxPool2d(2)(torch.from_numpy(siete).view(1, 1, 12, 12)).view(6, 6).numpy()
print("12x12 ->", pooled.shape)
print("\n".join("".join("#" if v else "." for v in row) for row in pooled))
