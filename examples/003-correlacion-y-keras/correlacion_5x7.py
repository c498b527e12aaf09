# %% [markdown]
# # Correlación cruzada: el ejemplo 5x7 del capítulo y sus fórmulas de tamaño (74)-(77)
# The textbook chapter's worked example: a 5x7 input, a 3x3 kernel, `cv2.filter2D`'s output
# (cross-correlation, border reflected as OpenCV's BORDER_REFLECT_101). Run:
# `python examples/003-correlacion-y-keras/correlacion_5x7.py`

# %%
import numpy as np

from cnnlab.ops import correlate2d, output_size

entrada = np.array([
    [0.0, 5.0, 0.0, 0.0, 9.0, 4.0, 0.0],
    [1.0, 6.0, 0.0, 0.0, 8.0, 3.0, 0.0],
    [2.0, 7.0, 0.0, 0.0, 7.0, 2.0, 0.0],
    [3.0, 8.0, 0.0, 0.0, 6.0, 1.0, 0.0],
    [4.0, 9.0, 0.0, 0.0, 5.0, 0.0, 0.0],
])
kernel = np.array([[1.0, -2.0, 3.0], [4.0, -5.0, 6.0], [-7.0, 8.0, -9.0]])

# %% The chapter's printed cv2.filter2D output
libro = np.array([
    [-16, 5, -16, 6, 9, -14, 4],
    [-21, 6, -20, 12, 10, -15, 14],
    [-22, 5, -22, 12, 9, -14, 16],
    [-23, 4, -24, 12, 8, -13, 18],
    [-8, 1, -12, -6, 5, -10, -12],
], dtype=float)
salida = correlate2d(entrada, kernel)  # padding 'same', border 'reflect' = cv2.filter2D
print(salida.astype(int))
print("red box (row 1, col 1):", int(correlate2d(entrada, kernel, padding="valid")[0, 0]))  # 6
print("matches the chapter's cv2.filter2D output:", bool(np.array_equal(salida, libro)))

# %% Formulas (74)-(77): 2 rows / columns of padding in all (p = 2), 3x3 kernel
print("stride 1:", output_size(5, 3, 1, (1, 1)), "x", output_size(7, 3, 1, (1, 1)))  # (74)-(75): 5 x 7
print("stride 2:", output_size(5, 3, 2, (1, 1)), "x", output_size(7, 3, 2, (1, 1)))  # (76)-(77): 3 x 4
print("strided correlation shape:", correlate2d(entrada, kernel, padding=1, border="zeros", stride=2).shape)
