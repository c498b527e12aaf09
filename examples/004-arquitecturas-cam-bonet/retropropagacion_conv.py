# %% [markdown]
# # Retropropagación a través de una convolución (apuntes: "backprop" de la capa convolucional)
# The lecture notes' hand formulas for a 3x3 input X and a 2x2 kernel W (valid, stride 1, output
# H 2x2): dW[m,n] = sum_ij X[i+m, j+n] dH[i,j], i.e. dW is the correlation of X with dH.
# Checked against torch autograd. Run: `python examples/004-arquitecturas-cam-bonet/retropropagacion_conv.py`

# %%
import torch
import torch.nn.functional as F

X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
W = torch.tensor([[1.0, -1.0], [0.5, 2.0]], requires_grad=True)
dH = torch.tensor([[1.0, 0.0], [-1.0, 2.0]])  # dL/dH, the gradient arriving from the next layer

# %% By hand, the notes' four lines (indices from 1 as in the notes)
x = lambda i, j: X[i - 1, j - 1].item()  # noqa: E731
h = lambda i, j: dH[i - 1, j - 1].item()  # noqa: E731
a_mano = [
    [x(1, 1) * h(1, 1) + x(1, 2) * h(1, 2) + x(2, 1) * h(2, 1) + x(2, 2) * h(2, 2),
     x(1, 2) * h(1, 1) + x(1, 3) * h(1, 2) + x(2, 2) * h(2, 1) + x(2, 3) * h(2, 2)],
    [x(2, 1) * h(1, 1) + x(2, 2) * h(1, 2) + x(3, 1) * h(2, 1) + x(3, 2) * h(2, 2),
     x(2, 2) * h(1, 1) + x(2, 3) * h(1, 2) + x(3, 2) * h(2, 1) + x(3, 3) * h(2, 2)],
]
print("dW by hand:", a_mano)

# %% Autograd: H = X * W (cross-correlation, as a CNN layer), L = sum(H * dH) so dL/dH = dH
H = F.conv2d(X.view(1, 1, 3, 3), W.view(1, 1, 2, 2))
(H.view(2, 2) * dH).sum().backward()
print("dW by autograd:", W.grad.tolist())
print("equal:", torch.allclose(W.grad, torch.tensor(a_mano)))
