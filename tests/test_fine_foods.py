import builtins
import gzip
import os

import keras
import numpy as np
import pytest

import mmzoo

from mmzoo.datasets import FINE_FOODS_CLASSES
from mmzoo.datasets import fine_foods
from mmzoo.datasets import load_fine_foods

# The loader and the baseline do not depend on the Keras backend: run once.
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent data checks; run once, under tensorflow",
)


def test_splits_shapes_and_labels():
    (x_train, y_train), (x_test, y_test) = load_fine_foods()
    assert x_train.shape == (4000,) and x_test.shape == (1000,)
    assert y_train.dtype == np.int32 and set(np.unique(y_train)) == {0, 1}
    assert isinstance(x_train[0], str)
    assert all(len(t.split()) >= 5 for t in x_test)
    # Both classes, "great" the larger: 2,600 / 1,400 and 658 / 342.
    assert 0.55 < y_train.mean() < 0.75 and 0.55 < y_test.mean() < 0.75
    assert np.bincount(y_train).tolist() == [1400, 2600]
    assert np.bincount(y_test).tolist() == [342, 658]
    assert x_train.dtype == object and x_test.dtype == object
    assert all(isinstance(t, str) and t.strip() for t in x_train)
    assert FINE_FOODS_CLASSES == ("other", "great")
    # Fresh copies, deterministic order.
    x_train[0] = "changed"
    assert load_fine_foods()[0][0][0] != "changed"


def test_missing_source_names_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("MMZOO_MODELDATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="r-cran-modeldata"):
        load_fine_foods(path=tmp_path)


def test_corrupt_files_raise_value_error(tmp_path):
    for name in ("Rdata.rdx", "Rdata.rdb"):
        (tmp_path / name).write_bytes(os.urandom(256))
    with pytest.raises(ValueError, match="could not be read|corrupt"):
        load_fine_foods(path=tmp_path)


def test_truncated_database_raises_value_error(tmp_path):
    source = fine_foods._find_directory(None)
    with open(os.path.join(source, "Rdata.rdx"), "rb") as f:
        (tmp_path / "Rdata.rdx").write_bytes(f.read())
    with open(os.path.join(source, "Rdata.rdb"), "rb") as f:
        (tmp_path / "Rdata.rdb").write_bytes(f.read()[:100_000])
    with pytest.raises(ValueError, match="fine-food|corrupt"):
        load_fine_foods(path=tmp_path)


def _copy_source(tmp_path):
    source = fine_foods._find_directory(None)
    for name in ("Rdata.rdx", "Rdata.rdb"):
        with open(os.path.join(source, name), "rb") as f:
            (tmp_path / name).write_bytes(f.read())
    return source


def test_corrupt_index_raises_value_error(tmp_path):
    # Valid gzip around bytes rdata cannot parse: its parser raises
    # NotImplementedError here, which the loader reports as a ValueError.
    _copy_source(tmp_path)
    raw = bytearray(gzip.decompress((tmp_path / "Rdata.rdx").read_bytes()))
    raw[2:6] = b"\xff\xff\xff\xff"  # the serialisation format version
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match="corrupt"):
        load_fine_foods(path=tmp_path)


def test_wrong_r_object_raises_value_error(tmp_path):
    # A readable R object that is not a lazy-load index: modeldata's own
    # Rdata.rds (the data set names) in place of Rdata.rdx.
    source = _copy_source(tmp_path)
    with open(os.path.join(source, "Rdata.rds"), "rb") as f:
        (tmp_path / "Rdata.rdx").write_bytes(f.read())
    with pytest.raises(ValueError, match="fine-food reviews"):
        load_fine_foods(path=tmp_path)


def test_package_directory_and_env_var(tmp_path, monkeypatch):
    data_dir = tmp_path / "modeldata" / "data"
    data_dir.mkdir(parents=True)
    _copy_source(data_dir)
    (x_train, _), _ = load_fine_foods(path=tmp_path / "modeldata")
    assert x_train.shape == (4000,)
    monkeypatch.setenv("MMZOO_MODELDATA_DIR", str(data_dir))
    assert fine_foods._find_directory(None) == os.path.realpath(data_dir)


def test_missing_rdata_names_it(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "rdata":
            raise ImportError("no rdata")
        return real_import(name, *args, **kwargs)

    fine_foods._load.cache_clear()
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install rdata"):
        load_fine_foods()
    fine_foods._load.cache_clear()


@pytest.mark.large
def test_tfidf_baseline():
    from mmzoo.recipes.text_baselines import tfidf_logistic_regression

    (x_train, y_train), (x_test, y_test) = load_fine_foods()
    # The full recipe: C cross-validated on the training set (about 6 s).
    result = tfidf_logistic_regression(x_train, y_train, x_test, y_test)
    print(f"TF-IDF + logistic regression: {result['accuracy']:.4f}")
    print(result["settings"])
    assert result["accuracy"] > 0.7
    assert result["settings"]["C_chosen_by"].endswith("the training set")
    assert 0.7 < result["settings"]["cv_accuracy"] <= 1.0
    # The same as recorded in the sentiment preset's metadata (0.804, C 4).
    presets = mmzoo.list_presets(metadata=True)
    baseline = presets.get("fine_food_sentiment_minilm")
    if baseline is not None:
        baseline = baseline["baseline"]
        assert result["settings"]["C"] == baseline["settings"]["C"]
        assert result["accuracy"] == pytest.approx(
            baseline["test_accuracy"], abs=0.0005
        )


def test_tfidf_baseline_checks_lengths():
    from mmzoo.recipes.text_baselines import tfidf_logistic_regression

    with pytest.raises(ValueError, match="train labels"):
        tfidf_logistic_regression(["a b", "c d"], [0], ["a"], [0], C=1.0)
