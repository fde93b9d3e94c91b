import gzip
import os

import keras
import numpy as np
import pytest

from mmzoo.datasets import FASHION_MNIST_CLASSES
from mmzoo.datasets import fashion_mnist
from mmzoo.datasets import load_fashion_mnist

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="numpy only, backend-independent; run once",
)
needs_debian = pytest.mark.skipif(
    not os.path.isdir(fashion_mnist.DEBIAN_DIR),
    reason="needs Debian's dataset-fashion-mnist",
)


def write_idx(path, array, gz=False):
    header = bytes([0, 0, 8, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if gz else open
    with opener(str(path) + (".gz" if gz else ""), "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@needs_debian
def test_official_splits_from_the_debian_package():
    images, labels = load_fashion_mnist("train")
    assert images.shape == (60000, 28, 28, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels), [6000] * 10)
    test_images, test_labels = load_fashion_mnist("test")
    assert test_images.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(test_labels), [1000] * 10)
    # The first test image of the official set is an ankle boot.
    assert FASHION_MNIST_CLASSES[test_labels[0]] == "Ankle boot"
    # Fresh copies: changing one does not change the next load.
    test_images[:] = 0
    assert load_fashion_mnist("test")[0].max() == 255


def test_reads_idx_files_from_a_path(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28))
    labels = np.array([0, 1, 2, 9, 4, 5])
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, gz=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    x, y = load_fashion_mnist("test", path=tmp_path)
    np.testing.assert_array_equal(x[..., 0], images)
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(FileNotFoundError, match="train-images"):
        load_fashion_mnist("train", path=tmp_path)


def test_bad_input_is_named(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2))
    with pytest.raises(ValueError, match="3, 28, 28"):
        load_fashion_mnist("test", path=tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "t10k-images-idx3-ubyte").write_bytes(b"\x01\x02")
    (tmp_path / "bad" / "t10k-labels-idx1-ubyte").write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="idx"):
        load_fashion_mnist("test", path=tmp_path / "bad")
    # No Debian package and offline: the message names the package.
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path / "none"))
    fashion_mnist._load.cache_clear()

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(
        keras.datasets.fashion_mnist, "load_data", offline, raising=False
    )
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist("test")
    fashion_mnist._load.cache_clear()


# ---------------------------------------------------------------- CIFAR-10


def test_load_cifar10_through_keras(monkeypatch):
    import keras

    from mmzoo.datasets import cifar10
    from mmzoo.datasets import load_cifar10

    images = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)

    def fake_load_data():  # Keras gives labels of shape (n, 1)
        return (images, np.array([[3], [9]])), (images[:1], np.array([[1]]))

    cifar10._load.cache_clear()
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fake_load_data)
    try:
        x, y = load_cifar10("train")
        assert x.shape == (2, 32, 32, 3) and y.tolist() == [3, 9]
        assert y.dtype == np.int32
        assert load_cifar10("test")[1].tolist() == [1]
        with pytest.raises(ValueError, match="'train' or 'test'"):
            load_cifar10("validation")
    finally:
        cifar10._load.cache_clear()

    def offline():
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    try:
        with pytest.raises(ConnectionError, match="load_fashion_mnist"):
            load_cifar10()
    finally:
        cifar10._load.cache_clear()
