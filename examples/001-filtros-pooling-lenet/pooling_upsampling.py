# %% [markdown]
# # Pooling, padding 'same', upsampling, convolución con stride y filtros 1x1 (diapositivas)
# A 4x4 matrix like the slides' pooling figure: max and average pooling 2x2 (stride = size),
# 'same' padding, upsampling by nearest neighbours, bilinear interpolation and bed of nails,
# a stride-2 convolution as learned downsampling and a 1x1 filter bank that mixes channels.
# Run: `python examples/001-filtros-pooling-lenet/pooling_upsampling.py`

# %%
import torch

from cnnlab.nn.pooling import AvgPool2d, MaxPool2d
from cnnlab.nn.resample import BedOfNailsUpsample, UpSampling2d

m = torch.tensor([[1.0, 1.0, 2.0, 4.0], [5.0, 6.0, 7.0, 8.0], [3.0, 2.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]]).view(1, 1, 4, 4)
print("max pooling 2x2:", MaxPool2d(2)(m).view(2, 2).tolist())        # [[6, 8], [3, 4]]
print("average pooling 2x2:", AvgPool2d(2)(m).view(2, 2).tolist())    # [[3.25, 5.25], [2.0, 2.0]]
print("max pooling 3x3 stride 1 'same':", tuple(MaxPool2d(3, 1, "same")(m).shape[-2:]))  # (4, 4)

# %% Upsampling a 2x2 matrix by 2
s = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
print("nearest:", UpSampling2d(2)(s).view(4, 4).tolist())
print("bilinear:", [[round(v, 2) for v in row] for row in UpSampling2d(2, "bilinear")(s).view(4, 4).tolist()])
print("bed of nails:", BedOfNailsUpsample(2)(s).view(4, 4).tolist())

# %% Downsampling with a stride-2 convolution (learned) and a 1x1 filter bank
conv = torch.nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
print("stride-2 conv: 3x32x32 ->", tuple(conv(torch.zeros(1, 3, 32, 32)).shape[1:]))   # (8, 16, 16)
one = torch.nn.Conv2d(64, 16, kernel_size=1)
print("1x1 filters: 64x28x28 ->", tuple(one(torch.zeros(1, 64, 28, 28)).shape[1:]),   # (16, 28, 28)
      "with", sum(p.numel() for p in one.parameters()), "parameters")                    # 1,040
