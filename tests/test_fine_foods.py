import builtins
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
    # Both classes, "great" the larger (64 % of training reviews).
    assert 0.55 < y_train.mean() < 0.75 and 0.55 < y_test.mean() < 0.75
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
    # The C the recipe's cross-validation chose (recorded in the sentiment
    # preset's metadata with the accuracy), to skip the 30-fit search here.
    baseline = mmzoo.list_presets()["fine_food_sentiment_minilm"]["baseline"]
    result = tfidf_logistic_regression(
        x_train, y_train, x_test, y_test, C=baseline["settings"]["C"]
    )
    print(f"TF-IDF + logistic regression: {result['accuracy']:.4f}")
    assert result["accuracy"] == pytest.approx(
        baseline["test_accuracy"], abs=0.0005
    )
