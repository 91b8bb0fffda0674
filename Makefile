# The two commands a fresh machine needs: `make setup` then `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test export clean sync-check

setup:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "metamae_lab needs Python 3.10 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# The pinned CPU wheel first: an unpinned torch would pull several GB of CUDA packages.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"

test:
	$(BIN)/python -m pytest -q tests
	$(BIN)/nbdev_test --n_workers 2

export:
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

# Fails when the package is not what the notebooks export, or a notebook is not clean.
sync-check: export
	@git status --porcelain -- nbs metamae_lab | tee /tmp/metamae_lab_sync.txt
	@test ! -s /tmp/metamae_lab_sync.txt || (echo "nbdev_export/nbdev_clean changed the files above: run 'make export' and commit" && exit 1)
