"""Registered datasets (loaded, or reported unavailable with an install hint) and the adapter for
your own data."""

import sys

import numpy as np
import pytest
import torch

import metamae_lab.data as data
import metamae_lab.data.builtin as builtin
from conftest import require
from metamae_lab.config import ModalitySpec, preset_config
from metamae_lab.data import (
    DATASETS,
    ArrayDataset,
    DatasetUnavailable,
    dataset_from_arrays,
    dataset_from_npz,
    infer_patch_size,
    list_datasets,
    load_dataset,
)
from metamae_lab.model import MetaMAE

# fixed train / test sizes of every registered dataset
SIZES = {
    "digits": (1198, 599),
    "fashion_mnist": (60000, 10000),
    "basic_motions": (40, 40),
    "japanese_vowels": (270, 370),
    "amp_peptides": (3696, 924),
    "splice": (2389, 797),
    "breast_cancer": (427, 142),
}
SLOW = {"fashion_mnist"}  # parsing 70000 images takes a few seconds
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in builtin.BUILT_IN]


def load_or_check_unavailable(name: str) -> ArrayDataset:
    "The dataset, or (after checking it is reported unavailable with an install hint) a skip."
    info = DATASETS[name]
    if not info.available:
        listing = {d["name"]: d for d in list_datasets()}
        assert listing[name]["available"] is False and listing[name]["install"] == info.install_hint
        with pytest.raises(DatasetUnavailable, match="Install it with") as e:
            load_dataset(name)
        assert info.install_hint in str(e.value)
        require(False, f"dataset {name} ({info.missing})")
    return load_dataset(name)


def real_steps(lengths, T: int) -> np.ndarray:
    return np.arange(T)[None] < lengths[:, None]  # (N, T)


# --- the registry
# --------------------------------------------------------------------------------------------------


def test_registry_names_and_listing():
    from metamae_lab.data.convert import benchmark_sources

    # the built-in sets, then the benchmarks
    assert list(DATASETS) == list(SIZES) + benchmark_sources()
    listing = list_datasets()
    assert [d["name"] for d in listing] == list(DATASETS)
    for d in listing:
        assert set(d) == {
            "name",
            "origin",
            "kind",
            "shape",
            "patch_size",
            "sample",
            "classes",
            "available",
            "source",
            "install",
        }
        assert isinstance(d["available"], bool) and d["install"] and d["source"]
        assert d["origin"] == ("built-in" if d["name"] in SIZES else "benchmark")
        if d["origin"] == "built-in":  # consistent
            ModalitySpec(
                d["kind"], d["shape"], d["patch_size"], vocab_size=2 if d["kind"] == "tokens" else 0
            )
    assert data.DEFAULT_DATASET == "digits"


@pytest.mark.parametrize("name", NAMES)
def test_registered_dataset_loads_or_says_how_to_install(name):
    info, ds = DATASETS[name], load_or_check_unavailable(name)
    spec = ds.spec
    assert (ds.name, spec.kind, spec.shape, ds.num_classes) == (
        name,
        info.kind,
        info.shape,
        info.num_classes,
    )
    assert (
        spec.patch_size
        == ModalitySpec(
            info.kind, info.shape, info.patch_size, vocab_size=spec.vocab_size
        ).patch_size
    )
    assert (len(ds.x_train), len(ds.x_test)) == SIZES[name]
    assert ds.source and len(ds.class_names) == ds.num_classes
    T = spec.shape[-1]
    for which in ("train", "test"):
        x, y, lengths = ds.split(which)
        assert x.shape[1:] == spec.shape
        assert x.dtype == (np.int64 if spec.is_discrete else np.float32)
        assert y.dtype == np.int64 and y.shape == (len(x),)
        assert set(np.unique(y).tolist()) == set(range(ds.num_classes)), (
            "every class on both sides of the split"
        )
        assert (lengths is not None) == spec.variable_length
        if lengths is not None:
            assert lengths.dtype == np.int64 and lengths.shape == (len(x),)
            assert lengths.min() >= 1 and lengths.max() <= T
            padding = ~real_steps(lengths, T)
            assert (
                x[np.broadcast_to(padding.reshape(len(x), *[1] * (x.ndim - 2), T), x.shape)] == 0
            ).all()
        if spec.is_discrete:
            assert x.min() >= 0 and x.max() < spec.vocab_size
        else:
            assert np.isfinite(x).all()
    if spec.variable_length:
        assert max(ds.lengths_train.max(), ds.lengths_test.max()) == T, "padded to the longest"
    if spec.is_discrete:
        assert ds.norm_mean is None and ds.norm_std is None
        assert ds.denormalize(ds.x_train) is ds.x_train
        return
    # train statistics: zero mean, unit std per channel (per feature for tabular), over real steps
    # only
    x = ds.x_train.astype(np.float64)
    if spec.kind == "image":
        values = x.transpose(1, 0, 2, 3).reshape(spec.channels, -1)
    elif spec.kind == "tabular":
        values = x.T
    else:
        valid = (
            real_steps(ds.lengths_train, T) if spec.variable_length else np.ones((len(x), T), bool)
        )
        values = np.stack([x[:, c][valid] for c in range(spec.channels)])
    np.testing.assert_allclose(values.mean(1), 0, atol=1e-4)
    np.testing.assert_allclose(values.std(1), 1, atol=1e-3)
    assert (
        ds.norm_mean.shape
        == ds.norm_std.shape
        == (
            (spec.channels, 1, 1)
            if spec.kind == "image"
            else (spec.channels, 1)
            if spec.kind == "sequence"
            else spec.shape
        )
    )
    raw = ds.denormalize(ds.x_test[:5])
    np.testing.assert_allclose((raw - ds.norm_mean) / ds.norm_std, ds.x_test[:5], atol=1e-4)
    assert torch.allclose(
        ds.denormalize(torch.as_tensor(ds.x_test[:5])), torch.as_tensor(raw), atol=1e-4
    )


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_of_every_dataset_goes_through_the_model(name):
    ds = load_or_check_unavailable(name)
    torch.manual_seed(0)
    model = MetaMAE(ds.spec, preset_config("tiny", mask_ratio=0.6))
    x, _, lengths = ds.split("train")
    out = model(
        torch.as_tensor(x[:4]),
        lengths=None if lengths is None else torch.as_tensor(lengths[:4]),
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.isfinite(out.loss)
    out.loss.backward()


def test_known_datasets_hold_what_they_should():
    for name in builtin.BUILT_IN:
        require(DATASETS[name].available, f"dataset {name}")
    if DATASETS["digits"].available:
        np.testing.assert_allclose(
            load_dataset("digits").denormalize(load_dataset("digits").x_train).max(), 16, atol=1e-3
        )
    if DATASETS["basic_motions"].available:
        assert load_dataset("basic_motions").class_names == [
            "Standing",
            "Running",
            "Walking",
            "Badminton",
        ]
    if DATASETS["japanese_vowels"].available:
        ds = load_dataset("japanese_vowels")
        assert (ds.lengths_train.min(), ds.lengths_test.max()) == (7, 29)
    if DATASETS["breast_cancer"].available:
        assert load_dataset("breast_cancer").class_names == ["malignant", "benign"]
    if DATASETS["amp_peptides"].available:
        ds = load_dataset("amp_peptides")
        assert ds.class_names == ["UniProt", "AMP"] and ds.spec.vocab_size == 20
        peptides = [
            "".join(data.AMINO_ACIDS[i] for i in row[:n])
            for x, _, ls in (ds.split("train"), ds.split("test"))
            for row, n in zip(x, ls)
        ]
        assert len(set(peptides)) == len(peptides) == 4620, (
            "unique peptides, conflicting ones dropped"
        )
        assert (min(map(len, peptides)), max(map(len, peptides))) == (7, 174)
    if DATASETS["splice"].available:
        ds = load_dataset("splice")
        assert ds.class_names == ["ei", "ie", "n"]
        assert (np.bincount(ds.y_train) + np.bincount(ds.y_test)).tolist() == [767, 765, 1654]


def test_everything_missing_is_reported_with_the_package_and_command(monkeypatch, tmp_path):
    # no sklearn, sktime, modlamp, rdata
    monkeypatch.setattr(builtin, "_package_dir", lambda package: None)
    monkeypatch.setitem(builtin.SYSTEM_DIRS, "fashion-mnist", str(tmp_path / "none"))
    monkeypatch.setitem(builtin.SYSTEM_DIRS, "mlbench", str(tmp_path / "none"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    listing = list_datasets()
    assert not any(d["available"] for d in listing)
    packages = {
        "digits": "scikit-learn",
        "fashion_mnist": "dataset-fashion-mnist",
        "basic_motions": "sktime",
        "japanese_vowels": "sktime",
        "amp_peptides": "modlamp",
        "splice": "r-cran-mlbench",
        "breast_cancer": "scikit-learn",
    }
    for name, package in packages.items():
        with pytest.raises(DatasetUnavailable) as e:
            load_dataset(name)
        message = str(e.value)
        assert package in message and DATASETS[name].install_hint in message, message
        assert e.value.dataset == name


def test_a_failing_availability_check_never_breaks_the_listing(monkeypatch):
    def broken():
        raise RuntimeError("disk on fire")

    info = DATASETS["digits"]
    monkeypatch.setitem(DATASETS, "digits", type(info)(**{**info.__dict__, "check": broken}))
    (digits,) = [d for d in list_datasets() if d["name"] == "digits"]
    assert digits["available"] is False
    with pytest.raises(DatasetUnavailable, match="disk on fire"):
        load_dataset("digits")


def test_datasets_found_through_the_data_env_var(monkeypatch, tmp_path):
    require(DATASETS["splice"].available, "dataset splice")
    (tmp_path / "DNA.rda").write_bytes(builtin._dna_file().read_bytes())
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert builtin._dna_file() == tmp_path / "DNA.rda"


def test_unknown_names_and_wrong_arguments():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("my_data.csv")
    with pytest.raises(ValueError, match="no such file"):
        load_dataset("/nonexistent/dir/my_data.npz")
    with pytest.raises(ValueError, match="is image data"):
        load_dataset("digits", kind="tokens")
    require(DATASETS["digits"].available, "dataset digits")
    with pytest.raises(ValueError, match="does not divide"):
        load_dataset("digits", patch_size=3)
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_dataset("digits").split("val")


def test_registered_patch_override_and_copies():
    require(DATASETS["digits"].available, "dataset digits")
    ds = load_dataset("digits", patch_size=4)
    assert ds.spec.patch_size == (4, 4) and ds.spec.num_tokens == 4
    ds.x_train[:] = 0  # the caller's copy: the cache is untouched
    again = load_dataset("digits")
    assert again.spec.patch_size == (2, 2) and again.x_train.std() > 0.5
    assert "digits" in repr(again) and "1198 train" in repr(again)


# --- your own data
# --------------------------------------------------------------------------------------------------

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "x, kind, patch, extra",
    [
        (RNG.normal(size=(20, 3, 28, 32)), "image", (2, 2), {}),
        # integer images are images
        (RNG.integers(0, 256, size=(20, 1, 17, 8)).astype(np.uint8), "image", (17, 1), {}),
        (RNG.normal(size=(20, 6, 100)), "sequence", (2,), {}),
        (RNG.normal(size=(20, 2, 64)), "sequence", (1,), {}),
        (RNG.integers(0, 7, size=(20, 12)), "tokens", (1,), {"vocab_size": 7}),
        (RNG.normal(size=(20, 30)), "tabular", (1,), {}),
        (RNG.normal(size=(20, 200)).astype(np.float32), "tabular", (4,), {}),
    ],
)
def test_kind_and_patch_are_inferred(x, kind, patch, extra):
    ds = dataset_from_arrays(x, RNG.integers(0, 2, len(x)))
    assert (ds.spec.kind, ds.spec.patch_size, ds.spec.shape) == (kind, patch, x.shape[1:])
    assert ds.x_train.dtype == (np.int64 if kind == "tokens" else np.float32)
    for key, value in extra.items():
        assert getattr(ds.spec, key) == value
    assert (len(ds.x_train), len(ds.x_test)) == (16, 4)


def test_patch_rule():
    assert infer_patch_size("image", (3, 224, 224)) == (14, 14)
    assert infer_patch_size("image", (1, 8, 8)) == (1, 1)
    assert infer_patch_size("sequence", (1, 127)) == 127  # a prime length longer than 64: one token
    assert infer_patch_size("sequence", (1, 128)) == 2
    assert infer_patch_size("tabular", (65,)) == 5
    assert infer_patch_size("tokens", (500,)) == 1


def test_labels_are_remapped_and_the_split_is_stratified_and_seeded():
    x = RNG.normal(size=(30, 5))
    y = np.repeat([10.0, 20.0, 35.0], [15, 12, 3])  # float labels with integer values are fine
    ds = dataset_from_arrays(x, y, test_fraction=0.2, seed=1)
    assert ds.class_names == ["10", "20", "35"] and ds.num_classes == 3
    assert np.bincount(ds.y_test).tolist() == [3, 2, 1] and np.bincount(ds.y_train).tolist() == [
        12,
        10,
        2,
    ]
    again = dataset_from_arrays(x, y, test_fraction=0.2, seed=1)
    assert np.array_equal(again.x_test, ds.x_test)
    other = dataset_from_arrays(x, y, test_fraction=0.2, seed=2)
    assert not np.array_equal(other.x_test, ds.x_test)
    # a class with one sample: a plain random split
    lonely = dataset_from_arrays(x, np.r_[np.zeros(29, int), 1])
    assert len(lonely.x_test) == 6


def test_statistics_come_from_the_train_split_only():
    x = np.concatenate([RNG.normal(0, 1, size=(80, 4)), RNG.normal(100, 50, size=(20, 4))])
    ds = dataset_from_arrays(x, test_fraction=0.5, seed=0)
    train, test = data.split_indices(len(x), None, 0.5, 0)
    np.testing.assert_allclose(ds.norm_mean, x[train].mean(0), rtol=1e-5)
    np.testing.assert_allclose(ds.norm_std, x[train].std(0), rtol=1e-5)
    np.testing.assert_allclose(
        ds.x_test, (x[test] - x[train].mean(0)) / x[train].std(0), rtol=1e-4, atol=1e-4
    )


def test_variable_length_sequences_and_tokens():
    T, n = 12, 40
    lengths = RNG.integers(1, T + 1, size=n)
    lengths[0] = T
    pad = ~real_steps(lengths, T)
    x = RNG.normal(5.0, 2.0, size=(n, 3, T))
    x[np.broadcast_to(pad[:, None], x.shape)] = np.nan  # padding may hold anything, NaN included
    ds = dataset_from_arrays(x, lengths=lengths, patch_size=3)
    assert ds.spec.variable_length and ds.spec.shape == (3, T)
    xs, _, ls = ds.split("train")
    assert (
        np.isfinite(xs).all()
        and (xs[np.broadcast_to(~real_steps(ls, T)[:, None], xs.shape)] == 0).all()
    )
    real = np.stack([xs[:, c][real_steps(ls, T)] for c in range(3)])
    np.testing.assert_allclose(real.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(real.std(1), 1, atol=1e-4)

    ids = RNG.integers(0, 4, size=(n, T))
    ids[pad] = -1  # junk past each length is ignored and becomes 0
    ds = dataset_from_arrays(ids, RNG.integers(0, 2, n), lengths=lengths)
    assert (ds.spec.kind, ds.spec.vocab_size, ds.spec.variable_length) == ("tokens", 4, True)
    assert ds.x_train.min() >= 0 and ds.norm_mean is None


def test_npz_round_trip(tmp_path):
    x, y, lengths = RNG.normal(size=(25, 2, 10)), RNG.integers(0, 3, 25), RNG.integers(1, 11, 25)
    path = tmp_path / "gait.npz"
    np.savez(path, x=x, y=y, lengths=lengths, notes=np.arange(3))
    ds, ref = dataset_from_npz(path, seed=3), dataset_from_arrays(x, y, lengths, seed=3)
    assert ds.name == "gait" and ds.spec == ref.spec
    for a, b in zip(
        (ds.x_train, ds.y_test, ds.lengths_test), (ref.x_train, ref.y_test, ref.lengths_test)
    ):
        np.testing.assert_array_equal(a, b)
    via_load = load_dataset(str(path), patch_size=5)
    assert via_load.spec.patch_size == (5,)
    np.savez(tmp_path / "plain.npz", x=RNG.normal(size=(10, 4)))
    plain = load_dataset(tmp_path / "plain.npz")
    assert plain.y_train is None and plain.num_classes == 0 and plain.spec.kind == "tabular"


def _x(*shape):
    return RNG.normal(size=shape)


def _with_nan_in_real_part():
    x = _x(10, 2, 6)
    x[3, 1, 0] = np.nan
    return dict(x=x, lengths=np.full(10, 4))


BAD = {
    "x and y differ": (dict(x=_x(10, 4), y=np.zeros(9, int)), "x and y have different lengths"),
    "x and lengths differ": (
        dict(x=_x(10, 2, 6), lengths=np.full(11, 3)),
        "lengths must hold one length per sample, shape (10,)",
    ),
    "nan": (dict(x=np.where(np.eye(10, 4) > 0, np.nan, 1.0)), "NaN or inf"),
    "inf": (dict(x=np.full((10, 1, 4, 4), np.inf)), "NaN or inf"),
    "nan in the real part": (_with_nan_in_real_part(), "real (unpadded) part of x holds NaN"),
    "rank 1": (dict(x=_x(10)), "cannot tell the kind"),
    "rank 5": (dict(x=_x(4, 1, 2, 2, 2)), "cannot tell the kind"),
    "image without channel axis": (
        dict(x=_x(10, 8, 8), kind="image"),
        "must have shape (N, C, H, W)",
    ),
    "tokens of rank 3": (dict(x=np.zeros((4, 2, 3), int), kind="tokens"), "must have shape (N, T)"),
    "fractional labels": (dict(x=_x(10, 4), y=np.linspace(0, 1, 10)), "non-integer values"),
    "nan labels": (dict(x=_x(10, 4), y=np.r_[np.zeros(9), np.nan]), "non-integer values"),
    "string labels": (dict(x=_x(10, 4), y=np.array(["cat", "dog"] * 5)), "labels must be integers"),
    "one-hot labels": (
        dict(x=_x(10, 4), y=np.eye(10, 2, dtype=int)),
        "one integer class label per sample",
    ),
    "empty": (dict(x=np.zeros((0, 4))), "x is empty"),
    "one sample": (dict(x=_x(1, 4)), "at least 2 samples"),
    "strings as x": (dict(x=np.array([["a", "b"]] * 4)), "x must hold real numbers"),
    "ragged x": (dict(x=[[1.0, 2.0], [3.0]]), "rectangular"),
    "length 0": (
        dict(x=_x(10, 2, 6), lengths=np.r_[np.zeros(1, int), np.full(9, 6)]),
        "lengths must lie in [1, 6]",
    ),
    "length > T": (dict(x=_x(10, 2, 6), lengths=np.full(10, 7)), "lengths must lie in [1, 6]"),
    "float lengths": (dict(x=_x(10, 2, 6), lengths=np.full(10, 3.0)), "lengths must be integers"),
    "lengths for an image": (
        dict(x=_x(10, 1, 4, 4), lengths=np.full(10, 4)),
        "lengths apply to sequence and tokens",
    ),
    "negative token ids": (dict(x=np.full((10, 5), -1)), "token ids must be >= 0"),
    "fractional token ids": (dict(x=np.full((10, 5), 0.5), kind="tokens"), "integer ids"),
    "unknown kind": (dict(x=_x(10, 4), kind="graph"), "unknown kind"),
    "patch does not divide": (dict(x=_x(10, 1, 8, 8), patch_size=3), "does not divide"),
    "test fraction": (dict(x=_x(10, 4), test_fraction=0.0), "test_fraction must lie in (0, 1)"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_arrays_are_rejected_with_a_clear_message(case):
    kwargs, message = BAD[case]
    with pytest.raises(ValueError) as e:
        dataset_from_arrays(**kwargs)
    assert message in str(e.value), str(e.value)


def test_nan_in_padding_only_is_fine():
    x = _x(10, 2, 6)
    x[:, :, 4:] = np.nan
    assert dataset_from_arrays(x, lengths=np.full(10, 4)).spec.variable_length


def test_bad_files_are_rejected_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        dataset_from_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "nox.npz", data=_x(10, 4))
    with pytest.raises(ValueError, match=r"no array named 'x' \(it holds \['data'\]\)"):
        dataset_from_npz(tmp_path / "nox.npz")
    np.savez(tmp_path / "objects.npz", x=np.array([[1, "a"]] * 4, dtype=object))
    with pytest.raises(ValueError, match="cannot read"):
        dataset_from_npz(tmp_path / "objects.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="cannot read"):
        dataset_from_npz(tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", _x(10, 4))
    with pytest.raises(ValueError, match="single .npy array"):
        dataset_from_npz(tmp_path / "single.npy")
    np.savez(tmp_path / "badlabels.npz", x=_x(10, 4), y=np.linspace(0, 1, 10))
    with pytest.raises(ValueError, match="non-integer values"):
        load_dataset(str(tmp_path / "badlabels.npz"))
