"""load() of a folder without a final bundle: one line that says what to do instead."""

from pathlib import Path

import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.inference import load
from cnnlab.inference.head import labels_of, squeeze_single_unit


def test_an_unfinished_run_points_to_best_and_resume(tmp_path: Path) -> None:
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "model.json").write_text("{}")
    (tmp_path / "state").mkdir()
    with pytest.raises(CnnlabError) as caught:
        load(tmp_path)
    text = str(caught.value)
    assert "did not finish" in text and f"use its best checkpoint ({tmp_path / 'best'})" in text
    assert f"cnnlab train --resume {tmp_path}" in text and "\n" not in text


def test_a_folder_that_is_no_bundle(tmp_path: Path) -> None:
    with pytest.raises(CnnlabError, match="no model.json here") as caught:
        load(tmp_path)
    assert "best checkpoint" not in str(caught.value)


def test_labels_of_every_kind_of_output() -> None:
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert labels_of(probs, "classification", ["a", "b", "c"]) == ["b", "a"]
    assert labels_of(np.array([0.2, 0.9]), "classification", ["cat", "dog"]) == ["cat", "dog"]  # 0.5 threshold
    assert labels_of(np.array([0.2, 0.9]), "classification", None) == ["0", "1"]
    assert labels_of(np.array([[1.5], [-2.0]]), "regression", None) == [1.5, -2.0]
    assert labels_of(np.zeros((0, 3)), "classification", None) == []  # an empty batch is no error
    assert squeeze_single_unit(np.array([[0.3], [0.8]])).shape == (2,)
    assert squeeze_single_unit(probs).shape == (2, 3)
