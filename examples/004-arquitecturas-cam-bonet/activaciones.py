# %% [markdown]
# # La familia ReLU (apuntes: capas de activación)
# ReLU max(0, x), leaky ReLU (slope 0.1 for x < 0), PReLU (a learnable slope, here its initial
# 0.25) and absolute rectification |x|, plotted on [-3, 3] into ./ejemplo-004/activaciones.png.
# Run: `python examples/004-arquitecturas-cam-bonet/activaciones.py`

# %%
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

x = torch.linspace(-3, 3, 121)
funciones = {
    "ReLU": torch.nn.ReLU()(x),
    "leaky ReLU (0.1)": torch.nn.LeakyReLU(0.1)(x),
    "PReLU (a = 0.25)": torch.nn.PReLU(init=0.25)(x).detach(),
    "|x| (absolute)": x.abs(),
}
for name, y in funciones.items():
    print(f"{name}: f(-2) = {y[20].item():.2f}, f(2) = {y[100].item():.2f}")

# %%
out = Path("ejemplo-004")
out.mkdir(exist_ok=True)
figure, axes = plt.subplots(1, 4, figsize=(12, 3), sharey=True)
for axis, (name, y) in zip(axes, funciones.items()):
    axis.plot(x, y)
    axis.axhline(0, color="gray", lw=0.5)
    axis.axvline(0, color="gray", lw=0.5)
    axis.set_title(name)
figure.tight_layout()
figure.savefig(out / "activaciones.png", dpi=80)
print("wrote", out / "activaciones.png")
