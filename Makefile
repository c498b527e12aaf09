# The two set-up commands of the README. Both work on a fresh machine:
#   make demo   installs cnnlab and runs the main job on the embedded default data
#   make test   installs cnnlab with its test extras and runs the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install demo test

$(BIN)/python:
	$(PYTHON) -m venv --system-site-packages $(VENV)

# torch first, pinned: the CPU machines carry a local 2.13.0 CPU wheel, while an
# unpinned torch would pull several GB of CUDA wheels. GPU machines ship their own.
install: $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"

demo: install
	rm -rf runs/shapes-demo
	$(BIN)/cnnlab train shapes --out runs/shapes-demo -q
	$(BIN)/cnnlab evaluate runs/shapes-demo shapes
	$(BIN)/cnnlab demo --out lab-demo
	@test -f runs/shapes-demo/report.html || $(BIN)/cnnlab report runs/shapes-demo
	@echo "the run's report: runs/shapes-demo/report.html (open it in a browser)"

test: install
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pytest -q
