import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # serve_helpers.py beside the tests (importlib import mode)

import pytest  # noqa: E402


@pytest.fixture
def svd_zoo_model(monkeypatch):
    """A zoo name whose model uses an operator ONNX cannot express (registered for one test)."""
    from serve_helpers import register_svd_model

    return register_svd_model(monkeypatch)
