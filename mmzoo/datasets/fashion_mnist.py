"""Fashion-MNIST: Debian's `dataset-fashion-mnist`, idx files, or Keras."""

import functools
import os

from mmzoo.datasets.mnist import _find_file
from mmzoo.datasets.mnist import _read_idx

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_PREFIX = {"train": "train", "test": "t10k"}
_SIZES = {"train": 60000, "test": 10000}


def load_fashion_mnist(split="train", path=None):
    """Loads Fashion-MNIST (Zalando's 28x28 clothing images, 10 classes).

    Reads the standard idx files from `path`, else from Debian's
    `dataset-fashion-mnist` package (`/usr/share/datasets/fashion-mnist`),
    else, when online, through `keras.datasets.fashion_mnist`. The split is
    the official one: 60,000 training and 10,000 test images, 6,000 and
    1,000 per class.

    Args:
        split: `"train"` or `"test"`.
        path: optional directory holding `train-images-idx3-ubyte`,
            `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
            `t10k-labels-idx1-ubyte`, each optionally gzipped (`.gz`).

    Returns:
        `(images, labels)`: `uint8` images `(n, 28, 28, 1)` in `[0, 255]` and
        `int32` labels `(n,)` in `[0, 9]` (names in `FASHION_MNIST_CLASSES`).
        The arrays are fresh copies.

    Raises:
        ValueError: for an unknown split or a malformed idx file.
        FileNotFoundError: when no source is available; the message names
            the Debian package to install.

    Example:
    ```python
    images, labels = mmzoo.datasets.load_fashion_mnist("test")
    images.shape  # (10000, 28, 28, 1)
    mmzoo.datasets.FASHION_MNIST_CLASSES[labels[0]]  # "Ankle boot"
    ```
    """
    if split not in _PREFIX:
        raise ValueError(
            f"`split` must be 'train' or 'test'. Received: {split!r}"
        )
    images, labels = _load(split, None if path is None else os.fspath(path))
    return images.copy(), labels.copy()


@functools.lru_cache(maxsize=4)
def _load(split, path):
    if path is not None:
        return _read_split(path, split)
    if os.path.isdir(DEBIAN_DIR):
        return _read_split(DEBIAN_DIR, split)
    try:
        import keras

        train, test = keras.datasets.fashion_mnist.load_data()
    except Exception as e:
        raise FileNotFoundError(
            "Fashion-MNIST was not found: install Debian's package "
            "(`apt-get install dataset-fashion-mnist`, idx files under "
            f"{DEBIAN_DIR}), pass `path=` to a directory of the idx files, "
            f"or go online for keras.datasets.fashion_mnist ({e})."
        ) from e
    images, labels = train if split == "train" else test
    return images[..., None], labels.astype("int32")


def _read_split(path, split):
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"`path` must be a directory of Fashion-MNIST idx files; got "
            f"{path!r}, which is not a directory."
        )
    prefix = _PREFIX[split]
    names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    images = _read_idx(_find_file(path, (names[0], names[0] + ".gz")), 3)
    labels = _read_idx(_find_file(path, (names[1], names[1] + ".gz")), 1)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(
            f"The {split} idx files in {path!r} hold images of shape "
            f"{images.shape} and {labels.shape} labels; expected "
            "(n, 28, 28) images and n labels."
        )
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"Fashion-MNIST labels are in [0, 9]; {path!r} holds a label "
            f"{int(labels.max())}."
        )
    return images[..., None], labels.astype("int32")
