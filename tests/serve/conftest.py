import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # helpers.py beside the tests (importlib import mode)
