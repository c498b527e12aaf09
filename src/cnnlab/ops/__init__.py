"""cnnlab.ops: pure functions on images: convolution, kernels, sizes, template matching.

NumPy arrays in give NumPy arrays out; torch tensors in give torch tensors out.
"""

from cnnlab.ops.arithmetic import effective_kernel_size, explain_output_size, output_size, same_padding
from cnnlab.ops.conv import convolve1d, convolve2d, correlate1d, correlate2d
from cnnlab.ops.template import match_template

__all__ = [
    "convolve1d",
    "convolve2d",
    "correlate1d",
    "correlate2d",
    "effective_kernel_size",
    "explain_output_size",
    "match_template",
    "output_size",
    "same_padding",
]
