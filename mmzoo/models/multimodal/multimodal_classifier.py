import contextlib

import keras
import numpy as np
from keras_hub.models import Task
from keras_hub.src.utils.pipeline_model import _train_validation_split
from keras_hub.src.utils.preset_utils import builtin_presets
from keras_hub.src.utils.python_utils import classproperty
from keras_hub.src.utils.tensor_utils import in_tf_function

from mmzoo.api_export import mmzoo_export
from mmzoo.models.multimodal.multimodal_backbone import MultimodalBackbone
from mmzoo.models.multimodal.multimodal_preprocessor import (
    MultimodalPreprocessor,
)
from mmzoo.presets import check_preset
from mmzoo.presets import loadable_presets
from mmzoo.utils import preset_weights
from mmzoo.utils.modality_checks import dict_form
from mmzoo.utils.modality_checks import present_modalities
from mmzoo.utils import python_batches
from mmzoo.utils.python_batches import is_python_batches
from mmzoo.utils.python_batches import preprocessed_batches
from mmzoo.utils.xla_cpu import CpuTrainingCompilerOptions


def _is_tf_dataset(x):
    try:
        import tensorflow as tf
    except ImportError:
        return False
    return isinstance(x, tf.data.Dataset)


def _is_dataset(x):
    """Anything but raw in-memory inputs (a dict, DataFrame or Series)."""
    return not (isinstance(x, dict) or _is_pandas(x))


def _is_pandas(x):
    return type(x).__module__.split(".")[0] == "pandas"


def _to_dataset(x, y, sample_weight, batch_size, shuffle):
    import tensorflow as tf

    data = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
    data = keras.tree.map_structure(
        lambda v: v if isinstance(v, tf.Tensor) else np.asarray(v), data
    )
    dataset = tf.data.Dataset.from_tensor_slices(data)
    if shuffle:
        size = int(dataset.cardinality())
        dataset = dataset.shuffle(size, reshuffle_each_iteration=True)
    return dataset.batch(batch_size or 32)


def _as_array(values, what):
    """`values` (array, list, Series, tensor) as numpy, or a clear error."""
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    if keras.ops.is_tensor(values) and not isinstance(values, np.ndarray):
        values = keras.ops.convert_to_numpy(values)
    try:
        return np.asarray(values)
    except ValueError as e:
        raise ValueError(f"{what} could not be read as an array: {e}") from e


def check_labels(y, num_classes, batch_size, what="Labels"):
    """Checks class labels eagerly: integer ids in `[0, num_classes)`.

    Args:
        y: labels, `(batch,)` or `(batch, 1)`.
        num_classes: int.
        batch_size: int, the number of input rows.
        what: how to name the labels in messages.

    Raises:
        ValueError: strings, non-integers, a wrong length or shape, or a
            class id out of range.

    Example:
    ```python
    check_labels(np.array([0, 3]), 10, 2)  # fine
    check_labels(np.array([0, 10]), 10, 2)  # ValueError: out of range
    ```
    """
    y = _as_array(y, what)
    if y.dtype.kind in "USO":
        raise ValueError(
            f"{what} must be integer class ids in [0, {num_classes}); "
            f"received strings (dtype {y.dtype}). Map them to ids, e.g. "
            "`classes, y = np.unique(y, return_inverse=True)`."
        )
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"{what} must be integer class ids in [0, {num_classes}). "
            f"Received dtype {y.dtype}."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{what} must have shape (batch,) of class ids in [0, "
            f"{num_classes}). Received shape {y.shape} (one-hot labels: "
            "pass `y.argmax(-1)`)."
        )
    if len(y) != batch_size:
        raise ValueError(
            f"{what} have {len(y)} rows but the inputs have {batch_size}."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise ValueError(
            f"{what} must be integer class ids in [0, {num_classes}); "
            "received non-integer floats."
        )
    bad = np.nonzero((y < 0) | (y >= num_classes))[0]
    if len(bad):
        raise ValueError(
            f"{what} must be class ids in [0, {num_classes}). Received "
            f"{y[bad][:5].tolist()} at rows {bad[:5].tolist()}."
        )


def labels_in_range(y, num_classes, what="Labels"):
    """In a `tf.data` pipeline: fails a batch whose labels are out of range.

    Datasets cannot be checked before training; this makes an out-of-range
    class id stop the pipeline (`InvalidArgumentError` naming the range) on
    every backend, where JAX would otherwise train on it silently.
    """
    import tensorflow as tf

    y = tf.convert_to_tensor(y)
    if y.dtype == tf.string:
        raise ValueError(
            f"{what} must be integer class ids in [0, {num_classes}); the "
            "dataset holds strings. Map them to ids first."
        )
    message = f"{what} must be class ids in [0, {num_classes})."
    checks = [
        tf.debugging.assert_greater_equal(
            y, tf.cast(0, y.dtype), message=message
        ),
        tf.debugging.assert_less(
            y, tf.cast(num_classes, y.dtype), message=message
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(y)


def check_sample_weight(sample_weight, batch_size):
    """Checks `sample_weight`: `(batch,)` finite numbers, one per row."""
    if sample_weight is None:
        return
    w = _as_array(sample_weight, "sample_weight")
    if w.dtype.kind not in "biuf":
        raise ValueError(
            f"sample_weight must be numbers (batch,). Received dtype "
            f"{w.dtype}."
        )
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim != 1 or len(w) != batch_size:
        raise ValueError(
            f"sample_weight must have shape ({batch_size},), one weight per "
            f"input row. Received shape {w.shape}."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or inf values.")


@mmzoo_export("mmzoo.models.MultimodalTask")
class MultimodalTask(
    CpuTrainingCompilerOptions, preset_weights.TaskWeightsWithoutBackbone, Task
):
    """Base class for mmzoo tasks on a `MultimodalBackbone`.

    It lets a task take the backbone's input dict with modalities left out
    (they are filled with placeholders and masked) and checks raw inputs
    eagerly, with the preprocessor's `standardize`, before `fit`, `predict`
    and `evaluate` build their `tf.data` pipelines.

    Accepted `x`: a dict of arrays keyed by modality, a pandas DataFrame
    (or Series) with modality columns, or batches of such dicts from a
    `tf.data.Dataset`, a `keras.utils.PyDataset`, a generator or a torch
    `DataLoader` (each batch `x`, `(x, y)` or `(x, y, sample_weight)`;
    a batch may leave modalities out). Python batches are preprocessed
    eagerly as they arrive, a `tf.data.Dataset` inside its pipeline.
    `fit`, `predict` and `evaluate` take `sample_rate=` (Hz), the rate of
    the audio given; without it the audio is taken to be at the preset's
    rate. On JAX the training step is compiled with XLA:CPU's convolutions
    in Eigen rather than YNNPACK (`mmzoo.utils.xla_cpu`: 1.4× faster
    training of the CNN encoders on a CPU; no effect on GPUs).
    """

    backbone_cls = MultimodalBackbone
    preprocessor_cls = MultimodalPreprocessor

    @classproperty
    def presets(cls):
        """The presets saved as this task class or a subclass: a task needs
        its heads, which another task's preset does not hold."""
        return loadable_presets(cls, builtin_presets(cls))

    def _check_preprocessor(self, preprocessor, backbone):
        if preprocessor is None:
            return
        if list(preprocessor.modalities) != list(backbone.modalities):
            raise ValueError(
                f"The preprocessor's modalities {preprocessor.modalities} "
                f"must match the backbone's {backbone.modalities}, in order "
                "(they fix the columns of 'modality_mask')."
            )

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, dict) and self.backbone is not None:
            inputs = self.backbone.standardize_inputs(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        inputs = self.backbone.standardize_inputs(inputs)
        return super().call(inputs, training=training, mask=mask)

    # --- Raw inputs -------------------------------------------------------

    def _refuse(self, x):
        name = type(self).__name__
        form = dict_form(self.backbone.modalities)
        if isinstance(x, (list, tuple)):
            raise ValueError(
                f"{name} takes x as a dict keyed by modality, {form}, not a "
                f"{type(x).__name__} of {len(x)} items."
            )
        if x is None or not _is_tf_dataset(x):
            raise ValueError(
                f"{name} takes a dict {form} of arrays, a pandas DataFrame "
                "with those columns, a batched `tf.data.Dataset`, a "
                "`keras.utils.PyDataset`, a generator or a torch "
                "`DataLoader` of such dicts (batches). Received: "
                f"{type(x).__name__}"
            )

    def _check_dataset(self, dataset):
        """Checks a `tf.data.Dataset`'s element structure eagerly."""
        import tensorflow as tf

        spec = dataset.element_spec
        if isinstance(spec, tuple):
            spec = spec[0]
        if self.preprocessor is None:
            return
        modalities = self.preprocessor.preprocessable_modalities
        present_modalities(spec, modalities, type(self).__name__)
        if any(isinstance(v, dict) for v in spec.values()):
            return  # already preprocessed
        ranks = {"text": 1, "image": 4}
        for name, rank in ranks.items():
            if name in spec and spec[name].shape.rank != rank:
                raise ValueError(
                    f"Modality '{name}' in the dataset has shape "
                    f"{tuple(spec[name].shape)}; expected rank {rank} with a "
                    "batch axis: batch the dataset (`ds.batch(n)`)."
                )
        if "audio" in spec and spec["audio"].shape.rank not in (2, 3):
            raise ValueError(
                "Modality 'audio' in the dataset has shape "
                f"{tuple(spec['audio'].shape)}; expected (batch, samples): "
                "batch the dataset (`ds.batch(n)`)."
            )
        if "text" in spec and spec["text"].dtype != tf.string:
            raise ValueError(
                "Modality 'text' in the dataset expects strings. Received "
                f"dtype {spec['text'].dtype.name}."
            )

    def _pipeline_rate(self, x, sample_rate):
        """The rate the pipeline resamples from: a user's dataset only
        (in-memory audio is resampled eagerly by `_prepare_x`)."""
        return sample_rate if _is_tf_dataset(x) else None

    def _prepare_x(self, x, sample_rate):
        """Standardises raw in-memory `x` eagerly; checks a dataset."""
        if self.preprocessor is None:
            if isinstance(x, dict) or _is_tf_dataset(x):
                return x
            self._refuse(x)
        if not _is_dataset(x):
            x, _ = self.preprocessor.standardize(
                x, sample_rate=sample_rate, allow_unbatched=False
            )
            return x
        self._refuse(x)
        self._check_dataset(x)
        return x

    def _preprocess_python_batches(self, x, sample_rate):
        """`x` (a `PyDataset`, generator or torch `DataLoader`) with every
        batch checked and preprocessed eagerly as it arrives."""

        def preprocess(x, y, sample_weight):
            if not (isinstance(x, dict) or _is_pandas(x)):
                self._refuse(x)  # a batch must be a dict
            x = self._prepare_x(x, sample_rate)
            self._check_split(x, y, sample_weight)
            if self.preprocessor is not None:
                x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
                    self.preprocess_samples(x, y, sample_weight)
                )
            # One structure for every batch (Keras' generator adapters need
            # it): missing modalities get placeholders and a 0 in
            # 'modality_mask'.
            x = self.backbone.standardize_inputs(x)
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

        return preprocessed_batches(x, preprocess)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        rate = getattr(self, "_dataset_sample_rate", None)
        if self.preprocessor is not None and rate is not None:
            return self.preprocessor(
                x, y=y, sample_weight=sample_weight, sample_rate=rate
            )
        return super().preprocess_samples(x, y, sample_weight)

    @contextlib.contextmanager
    def _sample_rate_scope(self, sample_rate):
        """Declares the audio rate of datasets mapped inside this scope, and
        turns a generator-backed dataset's structure mismatch (batches that
        differ in modalities) into a one-line `ValueError`."""
        import tensorflow as tf

        self._dataset_sample_rate = sample_rate
        try:
            yield
        except tf.errors.InvalidArgumentError as e:
            if "did not match the expected structure" not in str(e):
                raise
            raise ValueError(
                "The dataset's batches differ in which modalities they "
                "carry; tf.data needs one structure. Give every batch every "
                "modality key (zeros for missing rows) and mark the missing "
                "rows with 'modality_mask' (0 in that column)."
            ) from None
        finally:
            self._dataset_sample_rate = None

    def _check_targets(self, y, batch_size):
        """Checks targets against the inputs; overridden per task."""

    def _check_split(self, x, y, sample_weight):
        if not isinstance(x, dict):
            return
        rows = int(keras.tree.flatten(x)[0].shape[0])
        if y is not None:
            self._check_targets(y, rows)
        check_sample_weight(sample_weight, rows)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        sample_weight=None,
        validation_data=None,
        validation_split=None,
        shuffle=None,
        sample_rate=None,
        **kwargs,
    ):
        """`keras.Model.fit`, plus `sample_rate=` (Hz) of the audio given.

        `shuffle` defaults to `True` for arrays (shuffled each epoch) and is
        left to the dataset for a `tf.data.Dataset`.
        """
        if is_python_batches(x):
            return python_batches.fit(
                self,
                x,
                y,
                lambda v: self._preprocess_python_batches(v, sample_rate),
                batch_size=batch_size,
                sample_weight=sample_weight,
                validation_data=validation_data,
                validation_split=validation_split,
                shuffle=shuffle,
                **kwargs,
            )
        rate = self._pipeline_rate(x, sample_rate)
        x = self._prepare_x(x, sample_rate)
        self._check_split(x, y, sample_weight)
        if isinstance(validation_data, tuple) and validation_data:
            vx, vy, vsw = keras.utils.unpack_x_y_sample_weight(
                validation_data
            )
            vx = self._prepare_x(vx, sample_rate)
            self._check_split(vx, vy, vsw)
            validation_data = keras.utils.pack_x_y_sample_weight(vx, vy, vsw)
        if not _is_dataset(x):
            if validation_split and validation_data is None:
                (x, y, sample_weight), validation_data = (
                    _train_validation_split(
                        (x, y, sample_weight), validation_split
                    )
                )
            # keras-hub turns arrays into a `tf.data.Dataset` without
            # shuffling them; shuffle each epoch as `keras.Model.fit` does.
            shuffle = True if shuffle is None else shuffle
            x = _to_dataset(x, y, sample_weight, batch_size, shuffle)
            y = sample_weight = batch_size = None
            shuffle = False  # done above; Keras cannot shuffle a dataset
        shuffle = bool(shuffle)
        with self._sample_rate_scope(rate):
            return super().fit(
                x=x,
                y=y,
                batch_size=batch_size,
                sample_weight=sample_weight,
                validation_data=validation_data,
                shuffle=shuffle,
                **kwargs,
            )

    def evaluate(self, x=None, y=None, sample_rate=None, **kwargs):
        if kwargs.get("_use_cached_eval_dataset"):
            # `fit`'s validation pass, on its already prepared dataset.
            return super().evaluate(x=x, y=y, **kwargs)
        if is_python_batches(x):
            return python_batches.evaluate(
                self,
                x,
                y,
                lambda v: self._preprocess_python_batches(v, sample_rate),
                **kwargs,
            )
        rate = self._pipeline_rate(x, sample_rate)
        x = self._prepare_x(x, sample_rate)
        self._check_split(x, y, kwargs.get("sample_weight"))
        with self._sample_rate_scope(rate):
            return super().evaluate(x=x, y=y, **kwargs)

    def predict(self, x=None, sample_rate=None, **kwargs):
        if is_python_batches(x):
            return python_batches.predict(
                self,
                x,
                lambda v: self._preprocess_python_batches(v, sample_rate),
                **kwargs,
            )
        rate = self._pipeline_rate(x, sample_rate)
        x = self._prepare_x(x, sample_rate)
        with self._sample_rate_scope(rate):
            return super().predict(x=x, **kwargs)

    def export(
        self,
        filepath,
        format="tf_saved_model",
        verbose=None,
        input_signature=None,
        **kwargs,
    ):
        """Export for serving; a SavedModel serves raw inputs.

        With `format="tf_saved_model"` (the default) and a preprocessor, the
        SavedModel holds the preprocessor in front of the model and serves
        what `predict` takes: `serve` takes a dict of every modality (text
        `(batch,)` strings, images `(batch, height, width, channels)` uint8
        of any size, waveforms `(batch, samples)` float32 at the
        preprocessor's sample rate) and returns the outputs; `serve_image`,
        `serve_audio`, `serve_text_image`, ... take a subset, the missing
        modalities masked as in `predict`. `image_dtype="float32"` serves
        float images instead (in the preprocessor's `image_value_range`).
        Works from every backend (on PyTorch, whose SavedModels need
        `torch_xla`, a TensorFlow-backend process writes it).

        With `format="onnx"` and a preprocessor, an ONNX model of raw inputs
        (no text: its tokenizer has no ONNX form): one input per modality
        and `modality_mask` `(batch, num_modalities)` int32, 0 for a
        missing modality (whose input is then any placeholder of its rank),
        the spectrogram computed as a DFT convolution; from every backend
        (on JAX and PyTorch a TensorFlow-backend process writes it). Needs
        `tf2onnx` (`pip install mmzoo[onnx]`).

        Other formats, a given `input_signature` or no preprocessor:
        `keras.Model.export` (a model of preprocessed features).

        Example:

        ```python
        classifier = mmzoo.load("av_digits_attention")
        classifier.export("av_digits_serving")
        served = tf.saved_model.load("av_digits_serving")
        # What `predict` returns: this preset's head gives logits.
        logits = served.serve({"image": images, "audio": waveforms})
        image_only = served.serve_image({"image": images})

        classifier.export("av_digits.onnx", format="onnx")
        session = onnxruntime.InferenceSession("av_digits.onnx")
        logits = session.run(None, {
            "image": images,  # uint8 (batch, height, width, 1)
            "audio": waveforms,  # float32 (batch, samples) at 8 kHz
            "modality_mask": np.ones((len(images), 2), "int32"),
        })[0]
        ```
        """
        from mmzoo.utils import serving

        if format == "onnx" and input_signature is None and self.preprocessor:
            # Before any preset is saved for a TensorFlow process.
            serving.check_onnx_modalities(self)
        return serving.export(
            self,
            lambda **options: serving.multimodal_endpoints(self, **options),
            super().export,
            filepath,
            format=format,
            verbose=verbose,
            input_signature=input_signature,
            onnx_graph=lambda **options: serving.multimodal_onnx_graph(
                self, **options
            ),
            **kwargs,
        )

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate the task from a preset.

        `preset` is the name of an mmzoo preset (see `mmzoo.list_presets()`),
        a local preset directory, or a keras-hub handle such as
        `"hf://org/model"` or `"kaggle://..."`.
        """
        check_preset(preset)
        return preset_weights.load_task(
            super().from_preset, preset, load_weights, **kwargs
        )


@mmzoo_export("mmzoo.models.MultimodalClassifier")
class MultimodalClassifier(MultimodalTask):
    """A classifier on the fused output of a `MultimodalBackbone`.

    `logits = Dense(num_classes)(Dropout(fused_output))`. With a
    `preprocessor`, `fit`, `predict` and `evaluate` take raw inputs: a dict
    with any of `"text"` strings, `"image"` arrays and `"audio"` waveforms,
    leaving out the modalities that are missing. It compiles on construction
    with Adam, sparse categorical cross-entropy and accuracy, so `fit` works
    without a `compile` call.

    Args:
        backbone: a `mmzoo.models.MultimodalBackbone`.
        num_classes: int. Number of classes.
        preprocessor: a `mmzoo.models.MultimodalPreprocessor`, or `None` to
            feed preprocessed inputs.
        activation: activation of the output layer. `None` (default) returns
            logits; `"softmax"` returns probabilities (the default loss
            follows).
        dropout: float. Dropout rate before the output layer.

    Example:
    ```python
    classifier = mmzoo.models.MultimodalClassifier(
        backbone=backbone, preprocessor=preprocessor, num_classes=10
    )
    classifier.fit({"image": images, "audio": waves}, labels, epochs=3)
    classifier.predict({"audio": waves})  # image missing
    # Audio recorded at 16 kHz for an 8 kHz model: declare it, it is
    # resampled (undeclared audio is taken to be at the preset's rate).
    classifier.predict({"audio": waves_16k}, sample_rate=16000)
    classifier.save_to_preset("./my_preset")
    restored = mmzoo.models.MultimodalClassifier.from_preset("./my_preset")
    ```
    """

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        dropout=0.0,
        **kwargs,
    ):
        self._check_preprocessor(preprocessor, backbone)
        # Set before `Task.__init__`, which compiles with the defaults.
        self.activation = keras.activations.get(activation)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            activation=activation,
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        x = backbone(inputs)["fused_output"]
        x = self.output_dropout(x)
        outputs = self.output_dense(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        metrics="auto",
        **kwargs,
    ):
        """Configures the classifier for training.

        `"auto"` picks Adam (learning rate 1e-3), sparse categorical
        cross-entropy (from logits unless the activation is softmax) and
        sparse categorical accuracy. Other arguments go to
        `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            from_logits = self.activation in (None, keras.activations.linear)
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=from_logits
            )
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy("accuracy")]
        super().compile(
            optimizer=optimizer, loss=loss, metrics=metrics, **kwargs
        )

    def _check_targets(self, y, batch_size):
        check_labels(y, self.num_classes, batch_size)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if y is not None and in_tf_function():
            y = labels_in_range(y, self.num_classes)
        return super().preprocess_samples(x, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
            }
        )
        return config
