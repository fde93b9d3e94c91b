"""Keras 3's Python input forms, preprocessed batch by batch.

`keras.utils.PyDataset`s, Python generators and torch `DataLoader`s yield
batches that a task's preprocessor has to turn into model inputs before
Keras sees them. keras-hub maps its preprocessor over a `tf.data` or grain
dataset only, so these forms are wrapped here: each batch is preprocessed
eagerly, as it arrives, and handed to Keras as NumPy arrays in the same form
(a `PyDataset` stays a `PyDataset`, with its length, workers and epoch
hooks; a `DataLoader` stays a `DataLoader`; a generator a generator).
"""

import sys
import types

import keras
import numpy as np


def is_python_batches(x):
    """Whether `x` is a `PyDataset`, a generator or a torch `DataLoader`."""
    return (
        isinstance(x, (keras.utils.PyDataset, types.GeneratorType))
        or _is_torch_data_loader(x)
    )


def _is_torch_data_loader(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.utils.data.DataLoader)


def preprocessed_batches(x, preprocess):
    """`x` with `preprocess(x, y, sample_weight)` applied to every batch.

    Args:
        x: a `keras.utils.PyDataset`, a generator or a torch `DataLoader`,
            yielding `x`, `(x, y)` or `(x, y, sample_weight)` batches.
        preprocess: a function of `(x, y, sample_weight)` returning the
            model's batch (packed as `keras.utils.pack_x_y_sample_weight`
            does).

    Returns:
        The same form of input, yielding NumPy batches.
    """
    if isinstance(x, keras.utils.PyDataset):
        return _PreprocessedPyDataset(x, preprocess)
    if _is_torch_data_loader(x):
        return _preprocessed_data_loader(x, preprocess)
    return (apply_to_batch(preprocess, batch) for batch in x)


def refuse_arguments_beside(y=None, sample_weight=None, batch_size=None):
    """A clear error for arrays passed beside Python batches."""
    for name, value in (
        ("y", y),
        ("sample_weight", sample_weight),
        ("batch_size", batch_size),
    ):
        if value is not None:
            raise ValueError(
                "With a PyDataset, generator or DataLoader as `x`, its "
                "batches carry the targets and weights and set the batch "
                f"size; do not pass `{name}`."
            )


def validation_batches(validation_data, wrap):
    """`fit`'s `validation_data` beside Python batches, through `wrap` (the
    task's `preprocessed_batches`): a Python form as it is, a tuple of
    arrays as an `ArrayBatches`."""
    if validation_data is None:
        return None
    if is_python_batches(validation_data):
        return wrap(validation_data)
    if not isinstance(validation_data, (tuple, list)):
        raise ValueError(
            "With a PyDataset, generator or DataLoader as `x`, give "
            "`validation_data` in one of those forms or as a tuple "
            f"(x, y[, sample_weight]). Received: "
            f"{type(validation_data).__name__}"
        )
    data = keras.utils.unpack_x_y_sample_weight(tuple(validation_data))
    return wrap(ArrayBatches(keras.utils.pack_x_y_sample_weight(*data)))


def fit(model, x, y, wrap, **kwargs):
    """`keras.Model.fit` of `model` on Python batches `x`, each batch (and
    `validation_data`'s) through `wrap` (the task's
    `preprocessed_batches`). A `PyDataset` is shuffled by batch unless
    `shuffle=False`; a generator or a `DataLoader` shuffles itself."""
    refuse_arguments_beside(
        y, kwargs.get("sample_weight"), kwargs.get("batch_size")
    )
    if kwargs.get("validation_split"):
        raise ValueError(
            "`validation_split` needs arrays; with a PyDataset, generator or "
            "DataLoader pass `validation_data`."
        )
    kwargs["validation_data"] = validation_batches(
        kwargs.get("validation_data"), wrap
    )
    if kwargs.get("shuffle") is None:
        kwargs["shuffle"] = isinstance(x, keras.utils.PyDataset)
    return keras.Model.fit(model, x=wrap(x), **kwargs)


def evaluate(model, x, y, wrap, **kwargs):
    """`keras.Model.evaluate` of `model` on Python batches (see `fit`)."""
    refuse_arguments_beside(
        y, kwargs.get("sample_weight"), kwargs.get("batch_size")
    )
    return keras.Model.evaluate(model, x=wrap(x), **kwargs)


def predict(model, x, wrap, **kwargs):
    """`keras.Model.predict` of `model` on Python batches (see `fit`)."""
    refuse_arguments_beside(batch_size=kwargs.get("batch_size"))
    return keras.Model.predict(model, x=wrap(x), **kwargs)


def apply_to_batch(preprocess, batch):
    """One batch through `preprocess`, inputs and outputs as NumPy."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
    x, y, sample_weight = (
        _inputs_to_numpy(v) for v in (x, y, sample_weight)
    )
    outputs = preprocess(x, y, sample_weight)
    outputs = keras.tree.map_structure(_to_numpy, outputs)
    # Keras takes a generator's batches as tuples only: `(x,)` for inputs.
    return outputs if isinstance(outputs, tuple) else (outputs,)


class ArrayBatches(keras.utils.PyDataset):
    """In-memory `(x, y, sample_weight)` arrays as a `PyDataset` of batches
    (e.g. `validation_data` beside Python batches): re-read every epoch."""

    def __init__(self, data, batch_size=None):
        super().__init__()
        self.data = data
        self.batch_size = batch_size or 32
        leaves = [v for v in keras.tree.flatten(data) if v is not None]
        self.rows = len(leaves[0])

    def __len__(self):
        return -(-self.rows // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return keras.tree.map_structure(
            lambda v: None if v is None else v[rows], self.data
        )


def _inputs_to_numpy(value):
    """Tensors as NumPy; a list of strings (torch's collated ones) as one
    array."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _inputs_to_numpy(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_inputs_to_numpy(v) for v in value)
    if isinstance(value, list):
        if value and all(isinstance(v, (str, bytes)) for v in value):
            return np.asarray(value)  # a torch `DataLoader`'s strings
        return [_inputs_to_numpy(v) for v in value]
    return _to_numpy(value)


def _to_numpy(value):
    if value is None or isinstance(value, (np.ndarray, str, bytes)):
        return value
    if hasattr(value, "numpy"):  # TensorFlow's eager and torch's tensors
        value = value.detach() if hasattr(value, "detach") else value
        value = value.numpy()
    value = np.asarray(value)
    # A read-only view (of a TensorFlow tensor) would make torch warn.
    return value if value.flags.writeable else value.copy()


class _PreprocessedPyDataset(keras.utils.PyDataset):
    """A `PyDataset` whose batches go through a preprocessing function.

    Keeps the source's length, shuffling by index, workers and queue size;
    preprocessing runs in threads (the model's preprocessor is not sent to
    other processes), so `use_multiprocessing` is not forwarded.
    """

    def __init__(self, source, preprocess):
        super().__init__(
            workers=source.workers,
            use_multiprocessing=False,
            max_queue_size=source.max_queue_size,
        )
        self.source = source
        self.preprocess = preprocess

    @property
    def num_batches(self):
        return self.source.num_batches

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        return apply_to_batch(self.preprocess, self.source[index])

    def on_epoch_begin(self):
        self.source.on_epoch_begin()

    def on_epoch_end(self):
        self.source.on_epoch_end()


def _preprocessed_data_loader(loader, preprocess):
    """A `DataLoader` over `loader`'s batches, preprocessed.

    It iterates `loader` afresh each epoch (so the source's shuffling and
    workers stay in charge) and keeps its length.
    """
    import torch

    class Batches(torch.utils.data.IterableDataset):
        def __iter__(self):
            return (apply_to_batch(preprocess, batch) for batch in loader)

        def __len__(self):
            return len(loader)

    # `batch_size=None`: the batches are already made.
    return torch.utils.data.DataLoader(Batches(), batch_size=None)
