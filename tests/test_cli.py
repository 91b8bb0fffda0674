"Every error path of the metamae-lab CLI: one line on stderr, exit code 2, no traceback."

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from metamae_lab import data as data_module
from metamae_lab.cli import main


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("metamae-lab"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    code, out, err = run_cli(
        "pretrain",
        "--dataset",
        "digits",
        "--steps",
        6,
        "--batch-size",
        32,
        "--log-every",
        3,
        "--out",
        run_dir,
        "--quiet",
    )
    assert code == 0, err
    return run_dir


def test_pretrain_and_probe_happy_path(trained_run):
    code, out, err = run_cli(
        "probe", "--run", trained_run, "--features", "both", "--method", "knn", "--json"
    )
    assert code == 0, err
    (row,) = json.loads(out)["rows"]
    assert (row["features"], row["probe"], row["setting"]) == ("both", "knn", "k=20")
    assert set(row["pretrained"]) == {"accuracy", "macro_f1"}
    assert len(row["random_init"]["accuracy"]["values"]) == 3
    assert json.loads((trained_run / "probe.json").read_text())["rows"] == [row]
    code, out, err = run_cli("pretrain", "--out", trained_run, "--resume", "--steps", 9, "--quiet")
    assert code == 0 and json.loads(out)["step"] == 9, err


def test_one_probe_call_prints_every_probe_in_one_table_against_the_baselines_spread(trained_run):
    from metamae_lab.checkpoint import list_checkpoints

    step = int(list_checkpoints(trained_run)[0].stem.split("_")[1])  # the oldest kept
    code, out, err = run_cli(
        "probe", "--run", trained_run, "--methods", "linear", "knn", "--k", 3, 7,
        "--baseline-seeds", 2, "--step", step,
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{trained_run}: metamae on digits, step {step};")
    assert "random init, 2 seeds: mean [min, max]" in lines[2]
    rows = [line for line in lines if line.startswith("| a")]
    assert [r.split("|")[1:3] for r in rows] == [
        [f" {kind:<10} ", f" {probe:<10} "]
        for kind in ("amortized", "adapted")
        for probe in ("linear C=1", "knn k=3", "knn k=7")
    ]
    assert all(any(w in r for w in (" above ", " below ", " within ")) for r in rows)
    assert "Z* moves the test features by" in out and "predict the same class: linear C=1" in out
    assert lines[-1] == f"written: {trained_run / 'probe.json'}"


def test_probe_measures_how_far_z_star_moves_and_refuses_the_adapted_features_of_mae(
    trained_run, tmp_path
):
    code, out, err = run_cli("probe", "--run", trained_run, "--method", "knn", "--json")
    result = json.loads(out)
    shift = result["feature_shift"]
    assert code == 0 and 0 < shift["median"] <= shift["max"], err
    assert [a["setting"] for a in result["agreement"]] == ["k=20"]
    mae = tmp_path / "mae"
    code, _, err = run_cli(
        "pretrain", "--dataset", "digits", "--method", "mae", "--steps", 2, "--out", mae, "--quiet"
    )
    assert code == 0, err
    code, out, err = run_cli("probe", "--run", mae, "--method", "knn", "--json")
    result = json.loads(out)
    assert code == 0 and result["feature_shift"] is None and result["agreement"] == [], err
    assert [r["features"] for r in result["rows"]] == ["amortized"]
    for features in ("adapted", "both"):
        code, _, err = run_cli("probe", "--run", mae, "--features", features)
        assert_one_line_error(code, err, "is an MAE run", "trained no inner loop")


ERRORS = [
    (("pretrain", "--dataset", "no_such_set", "--out", "{tmp}/a", "--quiet"), ["no_such_set"]),
    (
        ("pretrain", "--dataset", "{tmp}/missing.npz", "--out", "{tmp}/b", "--quiet"),
        ["missing.npz"],
    ),
    (("pretrain", "--mask-ratio", "1.5", "--out", "{tmp}/c", "--quiet"), ["mask_ratio"]),
    (
        ("pretrain", "--inner-steps", "0", "--out", "{tmp}/d", "--quiet"),
        ["inner_steps must be a positive integer"],
    ),
    (
        ("pretrain", "--batch-size", "100000", "--steps", "1", "--out", "{tmp}/e", "--quiet"),
        ["larger than the training split"],
    ),
    (("pretrain", "--out", "{tmp}/f", "--resume", "--quiet"), ["no checkpoint"]),
    (("pretrain", "--steps", "abc", "--out", "{tmp}/g"), ["invalid int value"]),
    (("pretrain", "--no-such-flag", "--out", "{tmp}/h"), ["unrecognized arguments"]),
    (("pretrain",), ["--out"]),
    (("pretrain", "--model", "vae", "--out", "{tmp}/i"), ["method must be one of"]),
    (("pretrain", "--preset", "huge", "--out", "{tmp}/j"), ["unknown preset 'huge'"]),
    (("probe", "--run", "{tmp}/nothing"), ["no checkpoint"]),
    (("probe", "--run", "{tmp}/x", "--features", "pooled"), ["features must be one of"]),
    (("probe", "--run", "{tmp}/x", "--baseline-seeds", "0"), ["baseline_seeds must be"]),
    (("frobnicate",), ["invalid choice"]),
    ((), ["required"]),
]


@pytest.mark.parametrize(
    "argv,fragments", ERRORS, ids=[" ".join(a[:3]) or "nothing" for a, _ in ERRORS]
)
def test_error_paths(tmp_path, argv, fragments):
    code, out, err = run_cli(*[a.format(tmp=tmp_path) for a in argv])
    assert_one_line_error(code, err, *fragments)


def test_existing_run_needs_resume_or_overwrite(trained_run):
    code, _, err = run_cli("pretrain", "--out", trained_run, "--steps", 3, "--quiet")
    assert_one_line_error(code, err, "--resume", "--overwrite")
    code, _, err = run_cli(
        "pretrain", "--out", trained_run, "--resume", "--mask-ratio", 0.5, "--quiet"
    )
    assert_one_line_error(
        code, err, "only --steps may change", "mask_ratio: 0.5 given, 0.85 in the run"
    )


def test_corrupt_checkpoint(tmp_path, trained_run):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained_run, broken)
    for ckpt in broken.glob("checkpoint_*.pt"):
        ckpt.write_bytes(b"not a checkpoint")  # no intact one to fall back to
    code, _, err = run_cli("probe", "--run", broken)
    assert_one_line_error(code, err, "cannot load checkpoint", "not a file torch.save wrote")


def test_bad_npz_inputs(tmp_path):
    np.savez(tmp_path / "nan.npz", x=np.full((10, 4), np.nan, dtype=np.float32))
    np.savez(tmp_path / "mismatch.npz", x=np.zeros((10, 4), np.float32), y=np.zeros(7, np.int64))
    np.savez(tmp_path / "floaty.npz", x=np.zeros((10, 4), np.float32), y=np.linspace(0, 1, 10))
    for name, fragment in [("nan", "NaN"), ("mismatch", "10"), ("floaty", "integer")]:
        code, _, err = run_cli(
            "pretrain", "--dataset", tmp_path / f"{name}.npz", "--out", tmp_path / name, "--quiet"
        )
        assert_one_line_error(code, err, fragment)


def test_unavailable_dataset_says_how_to_install(tmp_path, monkeypatch):
    name = "splice"
    info = data_module.DATASETS[name]

    def unavailable(*args, **kwargs):
        raise data_module.DatasetUnavailable(f"{name} needs its package: {info.install_hint}")

    monkeypatch.setattr(data_module, "load_dataset", unavailable)
    monkeypatch.setattr(data_module, "load_run_data", unavailable)
    import metamae_lab.train as train_module

    monkeypatch.setattr(train_module, "load_run_data", unavailable)
    code, _, err = run_cli("pretrain", "--dataset", name, "--out", tmp_path / "u", "--quiet")
    assert_one_line_error(code, err, info.install_hint)


def test_console_script_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "metamae_lab.cli",
            "pretrain",
            "--dataset",
            "nope",
            "--out",
            str(tmp_path / "z"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert (
        proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    ), proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "metamae_lab.cli", "datasets"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "digits" in proc.stdout


@pytest.mark.parametrize("command", ["pretrain", "probe", "bench", "experiment", "convert"])
def test_every_flag_is_helped_by_its_own_fields_comment(command):
    "A field's comment is its flag's help, whichever way the comment is written in the dataclass."
    code, out, _ = run_cli(command, "--help")
    assert code == 0
    assert "__TEMP__" not in out, out  # a flag whose help the parser lost
    if command == "pretrain":
        text = " ".join(out.split("options:", 1)[1].split())  # past the usage lines
        for flag, words in {
            "--betas float float": "AdamW's (beta1, beta2)",
            "--compile-inner-loop, --no-compile-inner-loop": "second-order MetaMAE: the inner",
            "--dataset str": "a registered dataset name",
            "--resume, --no-resume": "continue the run in",
        }.items():
            assert text.split(flag, 1)[1].split(" --", 1)[0].strip().startswith(words), flag
