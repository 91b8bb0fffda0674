import os
import shutil

import pytest
import torch

from helpers import Scratch, run_cli

IN_CI = os.environ.get("CI") == "true"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped on CPU")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device: GPU-only check")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def require(available: bool, what: str):
    """Skip when `what` is missing here; under CI (CI=true) fail instead, since `make setup`
    installs everything."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing in CI: `make setup` should have installed it")
    pytest.skip(f"{what} is not installed here")


@pytest.fixture
def chromium() -> str:
    "The path of Debian's chromium (for PNG export and the browser tests)."
    path = shutil.which("chromium")
    require(path is not None, "chromium")
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    "A folder for the files a test module writes, with small runs trained once on demand."
    return Scratch(tmp_path_factory.mktemp("scratch"))


@pytest.fixture
def cli():
    "Run `metamae-lab ARGS...` in this process: (exit code, stdout, stderr)."
    return lambda *argv: run_cli(list(argv))
