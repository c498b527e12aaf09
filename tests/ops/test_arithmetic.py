"""output_size against real convolutions, explain_output_size's text, same padding."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.ops import correlate1d, correlate2d, explain_output_size, output_size, same_padding

GRID = list(itertools.product(range(1, 41), range(1, 8), range(1, 5), range(0, 4), range(1, 4)))  # I, K, S, P, D


def test_output_size_matches_the_course_notes_worked_values():
    # The lab's 28x28 input with a 5x5 window -> 24x24; the textbook chapter's "same" 3x3 on 28 -> 28;
    # stride 2 on 28 with a 5x5 kernel and no padding -> floor(23 / 2) + 1 = 12; dilation 2 makes a 3x3 act as 5x5.
    assert [output_size(28, 5), output_size(28, 3, 1, 1), output_size(28, 5, 2), output_size(28, 3, 1, 0, 2)] == \
        [24, 28, 12, 24]
    assert GRID[0] == (1, 1, 1, 0, 1) and GRID[-1] == (40, 7, 4, 3, 3)  # the grid below runs from end to end


def test_output_size_agrees_with_torch_conv1d_everywhere():
    # An actual convolution (torch's, independent of ours) for every combination:
    # same length where it has an output, and CnnlabError where it has none.
    kernels = {k: torch.ones(1, 1, k) for k in range(1, 8)}
    signals = {i: torch.zeros(1, 1, i) for i in range(1, 41)}
    non_empty = empty = 0
    for I, K, S, P, D in GRID:  # noqa: N806, E741
        try:
            actual = F.conv1d(signals[I], kernels[K], stride=S, padding=P, dilation=D).shape[-1]
        except RuntimeError:
            actual = 0
        if actual > 0:
            assert output_size(I, K, S, P, D) == actual, (I, K, S, P, D)
            non_empty += 1
        else:
            with pytest.raises(CnnlabError, match="output is empty"):
                output_size(I, K, S, P, D)
            empty += 1
    assert non_empty > 10_000 and empty > 100  # both branches really ran


def test_our_convolution_has_the_predicted_shape_on_a_sample_of_the_grid():
    for I, K, S, P, D in GRID[::37]:  # noqa: N806, E741
        signal = np.zeros(I)
        if I + 2 * P >= D * (K - 1) + 1:
            assert correlate1d(signal, np.ones(K), P, "zeros", S, D).shape == (output_size(I, K, S, P, D),)
        else:
            with pytest.raises(CnnlabError, match="output is empty"):
                correlate1d(signal, np.ones(K), P, "zeros", S, D)


def test_2d_shapes_use_each_axis_formula():
    out = correlate2d(np.zeros((28, 20)), np.ones((5, 3)), padding=(1, 1, 0, 0), border="zeros", stride=(2, 3), dilation=(1, 2))
    assert out.shape == (output_size(28, 5, 2, 1, 1), output_size(20, 3, 3, 0, 2)) == (13, 6)


def test_notes_formulas():
    assert output_size(28, 5) == 24  # seed 002: 28x28 with a 5x5 window -> 24x24
    assert output_size(7, 3, 2, 1) == 4  # seed 003 Eq. (77): floor((7 - 3 + 2 + 2)/2) = 4
    assert output_size(5, 3, 2, 1) == 3
    assert output_size(227, 11, 4) == 55  # AlexNet conv1
    assert output_size(10, 3, 1, (2, 0)) == 10  # asymmetric padding: before + after


@pytest.mark.parametrize(("I", "K", "S", "D"), itertools.product([1, 7, 28, 33], [1, 2, 3, 4, 5], [1, 2, 3], [1, 2]))
def test_same_padding_gives_ceil_i_over_s(I, K, S, D):  # noqa: N803, E741
    before, after = same_padding(K, D)
    assert before + after == D * (K - 1) and before - after in (0, 1)
    assert output_size(I, K, S, (before, after), D) == math.ceil(I / S)


def test_explain_shows_the_worked_formula_and_the_notes_forms():
    text = explain_output_size(28, 5, 2, 1, axis="height")
    assert "height: O = floor((I + 2P - D(K-1) - 1) / S) + 1" in text
    assert "floor((28 + 2*1 - 1*(5-1) - 1) / 2) + 1" in text
    assert "floor(25 / 2) + 1 = 12 + 1 = 13" in text
    assert "O = 1 + (2P + I - K)/S = 1 + (2*1 + 28 - 5)/2 = 1 + floor(25/2) = 13" in text
    assert "(m - k + 2c)/p + 1 = (28 - 5 + 2*1)/2 + 1 = floor(25/2) + 1 = 13" in text
    assert "not whole" in text


def test_explain_with_dilation_has_no_notes_form():
    text = explain_output_size(10, 3, 1, 0, 2)
    assert text.splitlines()[-1].endswith("= 6")
    assert "convolution notes" not in text and "lecture notes" not in text


@pytest.mark.parametrize(
    ("args", "where"),
    [
        ((0, 3), "input size I"),
        ((5, 0), "kernel size K"),
        ((5, 3, 0), "stride S"),
        ((5, 3, 1, -1), "padding P"),
        ((5, 3, 1, 0, 0), "dilation D"),
        ((5, 3, 1.5), "stride S"),
    ],
)
def test_bad_arguments_name_the_argument(args, where):
    with pytest.raises(CnnlabError, match=where):
        output_size(*args)


def test_empty_output_names_the_arguments_and_the_fix():
    with pytest.raises(CnnlabError) as caught:
        output_size(3, 5, 1, 0, 2)
    message = str(caught.value)
    assert "I=3, K=5, S=1, P=0, D=2" in message and "spans" in message
    assert "pad by at least 3 per side" in message
    # ... and the fix works: 9 >= 2(5-1) + 1.
    assert output_size(3, 5, 1, 3, 2) == 1
