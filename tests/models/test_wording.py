"""Issue 13: user-facing text of ops / nn / spec / models names the course notes by subject, never "seed NNN".

A user has no seed files and the CLI has a --seed option: "seed 003" reads as a
random seed. Docstrings, messages and the zoo's references say "the textbook
chapter", "the lecture notes' LeNet-5 table" and so on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnlab.cli import main

SRC = Path(__file__).resolve().parents[2] / "src" / "cnnlab"
SEED = re.compile(r"\bseeds? ?[0-9]{3}|seeds/|\bseed-[0-9]{3}", re.IGNORECASE)


@pytest.mark.parametrize("area", ["ops", "nn", "spec", "models"])
def test_no_seed_numbers_in_the_source(area: str) -> None:
    hits = [f"{path.relative_to(SRC)}:{n}: {line.strip()}" for path in sorted((SRC / area).rglob("*.py"))
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if SEED.search(line)]
    assert hits == []


def test_zoo_references_and_lab_output_name_the_notes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    references = {row["name"]: row["reference"] for row in rows}
    assert references["mnist_3conv"] == "the textbook chapter (MNIST CNN, model.summary(): 93,962 parameters)"
    assert references["lenet5"] == "LeCun et al. 1998, Proc. IEEE 86(11); the lecture notes' LeNet-5 table (§3.1)"
    assert not [name for name, ref in references.items() if SEED.search(ref)]
    assert main(["shape", "-i", "28x28x1", "-k", "5", "--padding", "1", "--stride", "2"]) == 0
    text = capsys.readouterr().out
    assert "convolution notes: O = 1 + (2P + I - K)/S = 1 + (2*1 + 28 - 5)/2 = 1 + floor(25/2) = 13" in text
    assert "lecture notes:     O = (m - k + 2c)/p + 1 = (28 - 5 + 2*1)/2 + 1 = floor(25/2) + 1 = 13" in text
    assert not SEED.search(text)
