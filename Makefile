# Set-up, tests and the main job. A fresh machine needs two commands: `make setup` then `make test`
# (or `make demo` for the main job).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup data test demo experiments docs docs-check readme export lint sync-check torch-floor

setup:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "metamae_lab needs Python 3.10 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# The pinned CPU wheel first: an unpinned torch would pull several GB of CUDA packages.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"  # the lab extra (views, experiments) and the tools of tests and docs
	# These two ship data files only; their declared dependencies are not needed to read them.
	$(BIN)/pip install --no-deps sktime==1.2.0 modlamp==4.3.3
	$(MAKE) data

# Debian packages behind fashion_mnist, splice and PNG export (skipped with a message when not root).
data:
	bash tools/install_system_packages.sh $(VENV)

test:
	$(BIN)/python -m pytest -q tests
	$(BIN)/nbdev_test --n_workers 2

# The main job: the quickstart experiment notebook on the digits (MAE and MetaMAE probed against random init,
# reconstructions, UMAP of Z vs Z*); results, figures and the executed notebook in figures/quickstart/default/.
# --force: run it even though the committed record says it finished (models already in runs/ are reused).
demo:
	$(BIN)/metamae-lab experiment quickstart --force

# Every experiment at its default settings (about three hours on one CPU thread), then the README's tables. One thread:
# the committed records were made that way, and float sums taken in another order move the numbers a little.
experiments:
	OMP_NUM_THREADS=1 $(BIN)/metamae-lab experiment quickstart --force
	OMP_NUM_THREADS=1 $(BIN)/metamae-lab experiment evidence --force
	OMP_NUM_THREADS=1 $(BIN)/metamae-lab experiment mask_ratio_sweep --force
	OMP_NUM_THREADS=1 $(BIN)/metamae-lab experiment ablation --force
	OMP_NUM_THREADS=1 $(BIN)/metamae-lab experiment recipe_differences --force
	OMP_NUM_THREADS=1 $(BIN)/metamae-lab experiment seeds --force
	OMP_NUM_THREADS=1 $(BIN)/metamae-lab experiment paper_table --force
	$(MAKE) readme

# The documentation site, built offline into _docs/ (nbdev_proc_nbs, then mkdocs-material); no Quarto needed.
docs:
	$(BIN)/python tools/build_docs.py

# The built site in headless chromium: links, offline resources, figures, console errors; screenshots in figures/docs/.
docs-check:
	$(BIN)/python -m pytest -q tests/docs_site_check.py

# Fill the README's results blocks from figures/<experiment>/<run>/results.md and run.json.
readme:
	$(BIN)/python -c "from metamae_lab.experiments import update_readme; update_readme()"

export:
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

# ruff's formatter and linter (configured in pyproject.toml) over the repository.
lint:
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .

# Fails when the package is not what the notebooks export, or a notebook is not clean.
sync-check: export
	@git status --porcelain -- nbs metamae_lab | tee /tmp/metamae_lab_sync.txt
	@test ! -s /tmp/metamae_lab_sync.txt || (echo "nbdev_export/nbdev_clean changed the files above: run 'make export' and commit" && exit 1)

# The oldest torch settings.ini states (torch>=2.4), checked in a venv of its own: torch 2.4.1 from PyPI (a CUDA
# build, about 5 GB; it runs on the CPU), then the tests of the model, the recipes, the loader, training and faults.
torch-floor:
	$(PYTHON) -m venv .venv-torch-floor
	.venv-torch-floor/bin/pip install torch==2.4.1
	.venv-torch-floor/bin/pip install -e . pytest hypothesis
	.venv-torch-floor/bin/python -m pytest -q tests/test_model.py tests/test_masking.py tests/test_recipes.py \
		tests/test_loader.py tests/test_train.py tests/test_store_faults.py tests/test_run_faults.py
