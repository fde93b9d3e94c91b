"""CIFAR-10, for users who are online (`keras.datasets.cifar10`)."""

import functools

import numpy as np

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_SIZES = {"train": 50000, "test": 10000}


def load_cifar10(split="train"):
    """Loads CIFAR-10: 32x32 colour images of 10 classes.

    The seed's image experiment ran on CIFAR-10. It is downloaded by
    `keras.datasets.cifar10` (about 170 MB, cached by Keras under
    `~/.keras/datasets`), so it needs a network connection the first time;
    offline, `load_fashion_mnist` is the stand-in mmzoo's presets use.

    Args:
        split: `"train"` (50,000 images) or `"test"` (10,000).

    Returns:
        A tuple `(images, labels)`: `uint8` images of shape `(n, 32, 32, 3)`
        and `int32` labels of shape `(n,)` in `[0, 9]` (names in
        `CIFAR10_CLASSES`).

    Raises:
        ValueError: on an unknown split.
        ConnectionError: if the download fails.

    Example:
    ```python
    images, labels = mmzoo.datasets.load_cifar10("test")
    images.shape  # (10000, 32, 32, 3)
    ```
    """
    if split not in _SIZES:
        raise ValueError(
            f"`split` must be 'train' or 'test'. Received: {split!r}"
        )
    images, labels = _load()[split]
    return images.copy(), labels.copy()


@functools.lru_cache(maxsize=1)
def _load():
    import keras

    try:
        train, test = keras.datasets.cifar10.load_data()
    except Exception as e:
        raise ConnectionError(
            "CIFAR-10 is downloaded by keras.datasets.cifar10, which failed "
            f"({type(e).__name__}: {e}). It needs a network connection the "
            "first time; offline, use mmzoo.datasets.load_fashion_mnist()."
        ) from e
    out = {}
    for split, (images, labels) in (("train", train), ("test", test)):
        images = np.asarray(images, np.uint8)
        labels = np.asarray(labels).reshape(-1).astype(np.int32)
        if images.shape[1:] != (32, 32, 3) or len(images) != len(labels):
            raise ValueError(
                f"Unexpected CIFAR-10 {split} data: images of shape "
                f"{images.shape} and {len(labels)} labels."
            )
        out[split] = (images, labels)
    return out
