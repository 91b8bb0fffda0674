"""Installable where researchers work: the core alone trains and probes, an installed torch is kept,
the lab extra is named when it is missing, weights leave in the ecosystem's format, and the command
line's help reads clean."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import run_cli
from metamae_lab.checkpoint import (
    export_pretrained,
    list_checkpoints,
    load_checkpoint,
    model_from_checkpoint,
)
from metamae_lab.config import run_config
from metamae_lab.model import MetaMAE
from metamae_lab.train import pretrain

ROOT = Path(__file__).resolve().parents[1]
VERBS = [
    [],
    ["datasets"],
    ["pretrain"],
    ["pretrain", "--preset", "dabs"],
    ["probe"],
    ["convert"],
    ["verify"],
    ["export"],
    ["bench"],
    ["experiment"],
]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v) or "metamae-lab")
def test_help_names_every_argument_and_says_each_default_once(verb):
    code, out, _ = run_cli([*verb, "--help"])
    assert code == 0 and out
    # a positional or value unnamed
    assert not re.search(r"\[None\]|^\s+None\s|--[\w-]+ None\b", out, re.M), out
    assert "--no-no-" not in out and "--nono" not in out, out  # one negation per flag: --no-name
    glued = [
        f"--no{m}"
        for m in re.findall(r"--no([a-z][\w-]*)", out)
        if f"--{m}," in out or f"--{m} " in out
    ]
    assert not glued, glued  # simple-parsing's own form, --noname
    for entry in re.split(r"\n  (?=-)", out):
        assert entry.count("(default:") <= 1, entry


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    return pretrain(
        run_config("tiny", dataset="digits", steps=4, batch_size=16), out, progress=False
    ).run_dir


def test_export_round_trips_exactly_and_loads_without_a_pickle(run_dir, tmp_path, monkeypatch):
    code, out, err = run_cli(["export", "--run", run_dir, "--out", tmp_path / "weights"])
    assert code == 0, err
    assert sorted(p.suffix for p in (tmp_path / "weights").iterdir()) == [
        ".json",
        ".json",
        ".md",
        ".safetensors",
    ]
    trained = model_from_checkpoint(load_checkpoint(run_dir))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("a pickle was loaded"))
    loaded = MetaMAE.from_pretrained(tmp_path / "weights")
    assert (loaded.spec, loaded.cfg) == (trained.spec, trained.cfg)
    ours, theirs = trained.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    x = torch.randn(3, *trained.spec.shape)
    assert torch.equal(loaded.eval().amortized_features(x), trained.eval().amortized_features(x))


def test_probes_open_an_exported_folder_and_refuse_what_an_encoder_alone_cannot_give(
    run_dir, tmp_path
):
    export_pretrained(run_dir, tmp_path / "all")
    export_pretrained(run_dir, tmp_path / "encoder", encoder_only=True)
    code, out, err = run_cli(
        ["probe", "--run", tmp_path / "all", "--method", "knn", "--features", "adapted", "--json"]
    )
    assert code == 0 and 0 <= json.loads(out)["rows"][0]["pretrained"]["accuracy"] <= 1, err
    code, out, err = run_cli(["probe", "--run", tmp_path / "encoder", "--method", "knn"])
    assert code == 0, err
    code, _, err = run_cli(["probe", "--run", tmp_path / "encoder", "--features", "adapted"])
    assert code == 2 and "holds the encoder alone" in err and err.count("\n") == 1, err


def test_a_missing_lab_extra_is_named_in_one_line(monkeypatch):
    import builtins

    real = builtins.__import__

    def without_papermill(name, *args, **kwargs):
        if name.split(".")[0] == "papermill":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_papermill)
    for module in [
        m
        for m in sys.modules
        if m.split(".")[0] in ("papermill", "metamae_lab") and "experiments" in m
    ]:
        monkeypatch.delitem(sys.modules, module)
    code, _, err = run_cli(["experiment"])
    assert (
        code == 2
        and "experiment needs the lab extra" in err
        and "pip install 'metamae_lab[lab]'" in err
    ), err


# the new venv sees its own packages only
CLEAN = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _venv(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    return folder / "bin"


@pytest.mark.slow
def test_the_core_alone_installs_beside_an_installed_torch_and_trains_and_probes(tmp_path):
    """A fresh venv that already has a torch: installing the package keeps it, and pretrain and
    probe run."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        env=CLEAN,
    )
    (wheel,) = wheels.glob("metamae_lab-*.whl")
    bin_ = _venv(tmp_path / "venv")
    pip = [str(bin_ / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"torch=={torch.__version__.split('+')[0]}"], check=True, env=CLEAN)
    before = subprocess.run(
        [bin_ / "python", "-c", "import torch; print(torch.__version__, torch.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=CLEAN,
    ).stdout
    lab = subprocess.run(
        [*pip, "--dry-run", "--report", str(tmp_path / "lab.json"), f"{wheel}[lab]"],
        capture_output=True,
        text=True,
        env=CLEAN,
    )
    assert lab.returncode == 0, lab.stderr[-2000:]
    planned = {
        item["metadata"]["name"].lower()
        for item in json.loads((tmp_path / "lab.json").read_text())["install"]
    }
    assert "torch" not in planned and {"papermill", "jupyterlab"} <= planned, sorted(planned)
    subprocess.run([*pip, str(wheel)], check=True, env=CLEAN)
    after = subprocess.run(
        [bin_ / "python", "-c", "import torch; print(torch.__version__, torch.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=CLEAN,
    ).stdout
    assert after == before
    cli = [str(bin_ / "metamae-lab")]
    done = subprocess.run(
        [
            *cli,
            "pretrain",
            "--dataset",
            "breast_cancer",
            "--out",
            str(tmp_path / "run"),
            "--steps",
            "3",
            "--batch-size",
            "16",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=CLEAN,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run(
        [*cli, "probe", "--run", str(tmp_path / "run"), "--method", "knn"],
        capture_output=True,
        text=True,
        env=CLEAN,
    )
    assert done.returncode == 0 and "accuracy" in done.stdout, done.stderr[-2000:]
    done = subprocess.run([*cli, "experiment"], capture_output=True, text=True, env=CLEAN)
    assert done.returncode == 2 and "needs the lab extra" in done.stderr, done.stderr[-2000:]
    assert list_checkpoints(tmp_path / "run")
