# %% [markdown]
# # Tamaños de salida y número de parámetros (apuntes: hiperparámetros, LeNet-5, AlexNet, VGG, Inception)
# (m - k + 2c)/p + 1 for the notes' examples, LeNet-5's per-layer counts, VGG16's 138 M,
# 3 stacked 3x3 against one 7x7 and Inception v2's two 3x3 in place of one 5x5.
# Run: `python examples/004-arquitecturas-cam-bonet/tamanos_y_parametros.py`

# %%
from cnnlab.models import create
from cnnlab.nn.params import count_params
from cnnlab.ops import output_size

print("(6 - 3)/1 + 1 =", output_size(6, 3, 1))                # 4
print("AlexNet conv1 (227 - 11)/4 + 1 =", output_size(227, 11, 4))  # 55
print("AlexNet pool1 (55 - 3)/2 + 1 =", output_size(55, 3, 2))      # 27

# %% LeNet-5 layer by layer (the zoo's model, the paper's 32x32 input)
lenet = create("lenet5")
for name in ("c1", "c3", "c5"):
    print(f"LeNet-5 {name.upper()}:", f"{count_params(getattr(lenet.features, name)).total:,}")  # 156, 1,516, 48,120
print("LeNet-5 F6:", f"{count_params(lenet.head.f6).total:,}")                            # 10,164
# A dense C1: every one of the 28x28x6 outputs connected to all 32x32 inputs, plus a bias
print("dense C1 would need:", f"{(32 * 32 + 1) * 28 * 28 * 6:,}")                          # 4,821,600
print("trainable total:", f"{count_params(lenet).trainable:,}")                            # 60,000

# %% VGG16 and stacked small kernels
print("VGG16 parameters:", f"{count_params(create('vgg16')).total:,}")   # 138,357,544
print("3 stacked 3x3 vs one 7x7, weights per channel pair:", 3 * 3 * 3, "vs", 7 * 7)  # 27 vs 49
print("two 3x3 vs one 5x5 (Inception v2):", 2 * 3 * 3, "vs", 5 * 5)                 # 18 vs 25
