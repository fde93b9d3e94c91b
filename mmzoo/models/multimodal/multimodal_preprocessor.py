import keras
import numpy as np
import tensorflow as tf
from keras_hub.layers import StartEndPacker
from keras_hub.models import Preprocessor
from keras_hub.src.utils.tensor_utils import convert_preprocessing_outputs
from keras_hub.src.utils.tensor_utils import in_tf_function

from mmzoo.api_export import mmzoo_export
from mmzoo.models.multimodal.multimodal_backbone import MultimodalBackbone
from mmzoo.utils.modality_checks import MODALITY_MASK
from mmzoo.utils.modality_checks import check_mask_shape
from mmzoo.utils.modality_checks import check_mask_values
from mmzoo.utils.modality_checks import dict_form
from mmzoo.utils.modality_checks import present_modalities

TEXT, IMAGE, AUDIO = "text", "image", "audio"
# A trailing image axis this long is read as channels (grey, RGB, RGBA).
IMAGE_CHANNELS = (1, 3, 4)
# uint16 pixels (16-bit images) map to [0, 255] by this divisor.
UINT16_TO_8_BIT = 257.0


def _to_numpy(x, name):
    if isinstance(x, (tf.Tensor, tf.RaggedTensor)):
        return x.numpy()
    if keras.ops.is_tensor(x):
        return keras.ops.convert_to_numpy(x)
    try:
        return np.asarray(x)
    except ValueError as e:
        raise ValueError(
            f"Modality '{name}' could not be read as an array (rows of "
            f"different shapes?): {e}"
        ) from e


def _is_string_array(x):
    return x.dtype.kind in ("U", "S") or (
        x.dtype.kind == "O" and x.size and isinstance(x.flat[0], (str, bytes))
    )


def _from_pandas(x, modalities):
    """A DataFrame or Series keyed by modality → a dict of columns."""
    try:
        import pandas as pd
    except ImportError:
        return x
    if isinstance(x, pd.Series):
        if x.name not in list(modalities) + [MODALITY_MASK]:
            raise ValueError(
                f"A pandas Series must be named after a modality in "
                f"{modalities}. Received a Series named {x.name!r}; pass a "
                f"dict {dict_form(modalities)}."
            )
        return {x.name: _column(x)}
    if isinstance(x, pd.DataFrame):
        columns = [str(c) for c in x.columns]
        unknown = sorted(set(columns) - set(modalities) - {MODALITY_MASK})
        if unknown:
            raise ValueError(
                f"A pandas DataFrame must have one column per modality among "
                f"{modalities} (one object per row). Unknown columns: "
                f"{unknown}."
            )
        return {c: _column(x[c]) for c in columns}
    return x


def _column(series):
    values = list(series.to_numpy())
    if values and isinstance(values[0], (str, bytes)):
        return np.asarray(values, dtype=object)
    if values and np.ndim(values[0]) > 0:
        return values  # per-row arrays: stacked per modality below
    return np.asarray(values)


@mmzoo_export("mmzoo.models.MultimodalPreprocessor")
class MultimodalPreprocessor(Preprocessor):
    """Turns raw text, images and waveforms into `MultimodalBackbone` inputs.

    Input is a dict (or a pandas DataFrame with these columns) with any of:
    - `"text"`: a batch of strings `(batch,)`, tokenized with `tokenizer` (a
      keras-hub tokenizer, e.g. a WordPiece `keras_hub.tokenizers.
      BertTokenizer`) and packed to `sequence_length` with its start/end
      tokens, giving `{"token_ids", "padding_mask", "segment_ids"}`;
    - `"image"`: `(batch, height, width, channels)` images, resized and
      scaled by `image_converter` (a keras-hub `ImageConverter`, whose
      `scale` reads 8-bit pixel values, e.g. `1/255`). Pixels are read as:
      uint8 as they are; uint16 divided by 257 (16-bit → 8-bit); other
      integer dtypes as 8-bit values (they must lie in [0, 255]); floats as
      values in `image_value_range`, mapped linearly onto [0, 255]. A float
      batch outside `image_value_range`, or all within [0, 1] when the range
      is [0, 255], is refused (declare its range instead). Channels-first
      images `(batch, channels, height, width)` are refused;
    - `"audio"`: float waveforms `(batch, samples)` (or a list of clips of
      any lengths) at the audio converter's `sample_rate` unless the call
      declares `sample_rate=`, then resampled; padded or trimmed by
      `audio_converter` (a `mmzoo.layers.WaveformConverter`). Stereo
      `(batch, samples, 2)` is mixed down to mono;
    - `"modality_mask"`: optional `(batch, num_modalities)` 0/1 (bool or
      int) array, columns in `self.modalities` order, for batches where
      some rows lack a modality. Every row needs one modality present.

    Leaving a modality's key out means it is missing: its mask column is 0
    for the batch and `MultimodalBackbone` runs a zero placeholder through
    its encoder. The output always carries `"modality_mask"`. One example
    (text a scalar string, image `(height, width, channels)`, audio
    `(samples,)`) is preprocessed as a batch of one and returned without
    the batch axis, as keras-hub preprocessors do (so `ds.map(
    preprocessor).batch(n)` works).

    Bad input raises a `ValueError` naming the modality, what was expected
    and what arrived. Eager calls check values too (NaN, empty strings,
    `None` rows, pixel ranges, mask values) before any `tf.data` work;
    inside `tf.data` only shapes and dtypes can be checked.

    Args:
        tokenizer: keras-hub tokenizer for `"text"`, or `None`.
        image_converter: `keras_hub.layers.ImageConverter` for `"image"`, or
            `None`.
        audio_converter: `mmzoo.layers.WaveformConverter` for `"audio"`, or
            `None`.
        sequence_length: int. Packed text length, special tokens included.
            Settable after construction.
        modalities: list of modality names in the backbone's order (the mask
            column order). Defaults to those with a component, in the order
            text, image, audio.
        image_value_range: `(low, high)`, how float images are read:
            `low` is black and `high` white. Defaults to `(0, 255)`, the
            range of the uint8 images the shipped presets were trained on;
            pass `(0, 1)` for images already scaled to [0, 1].

    Call arguments:
        x: the input dict (or DataFrame).
        y: optional labels, passed through.
        sample_weight: optional sample weights, passed through.
        sample_rate: int or `None`. The rate of `x["audio"]`, in Hz; `None`
            means the audio converter's `sample_rate`.

    Example:
    ```python
    tokenizer = keras_hub.tokenizers.BertTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat"],
    )
    preprocessor = mmzoo.models.MultimodalPreprocessor(
        tokenizer=tokenizer,
        image_converter=keras_hub.layers.ImageConverter(
            image_size=(28, 28), scale=1 / 255.0
        ),
        sequence_length=8,
    )
    x = preprocessor({"text": ["a cat"],
                      "image": np.zeros((1, 32, 32, 1), "uint8")})
    x["modality_mask"]  # [[1, 1]]
    x = preprocessor({"image": np.zeros((1, 32, 32, 1), "uint8")})
    x["modality_mask"]  # [[0, 1]]: text missing
    preprocessor.image_value_range = (0, 1)
    x = preprocessor({"image": np.ones((32, 32, 1), "float32")})
    x["image"].shape  # (28, 28, 1): one example
    ```
    """

    backbone_cls = MultimodalBackbone

    def __init__(
        self,
        tokenizer=None,
        image_converter=None,
        audio_converter=None,
        sequence_length=64,
        modalities=None,
        image_value_range=(0, 255),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.image_converter = image_converter
        self.audio_converter = audio_converter
        components = self._components()
        if modalities is None:
            modalities = [m for m, c in components.items() if c is not None]
        modalities = list(modalities)
        if not modalities:
            raise ValueError(
                "MultimodalPreprocessor needs at least one of `tokenizer`, "
                "`image_converter` or `audio_converter`."
            )
        for name, component in components.items():
            if component is not None and name not in modalities:
                raise ValueError(
                    f"A component for '{name}' was given but '{name}' is not "
                    f"in modalities={modalities}."
                )
            if component is not None:
                # Always run the sublayers' TensorFlow path: it is what
                # `tf.data` runs, so eager calls give identical results.
                component._allow_python_workflow = False
        self._allow_python_workflow = False
        self.packer = None
        self._traced_preprocess = None
        self.sequence_length = sequence_length
        self.modalities = modalities
        self.image_value_range = image_value_range

    def _components(self):
        return {
            TEXT: self.tokenizer,
            IMAGE: self.image_converter,
            AUDIO: self.audio_converter,
        }

    @property
    def sequence_length(self):
        """Packed text length; setting it updates the packer."""
        return self._sequence_length

    @sequence_length.setter
    def sequence_length(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(
                f"`sequence_length` must be a positive int. Received: {value!r}"
            )
        if value < 1:
            raise ValueError(
                f"`sequence_length` must be a positive int. Received: {value}"
            )
        self._sequence_length = int(value)
        if self.packer is not None:
            self.packer.sequence_length = int(value)
        self._traced_preprocess = None  # retrace with the new length

    @property
    def image_value_range(self):
        """`(low, high)`: how float images are read (black, white)."""
        return self._image_value_range

    @image_value_range.setter
    def image_value_range(self, value):
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(
                "`image_value_range` must be a pair (low, high), e.g. "
                f"(0, 255) or (0, 1). Received: {value!r}"
            ) from None
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(
                "`image_value_range` must be finite with low < high. "
                f"Received: {value!r}"
            )
        self._image_value_range = (low, high)
        self._traced_preprocess = None

    @property
    def preprocessable_modalities(self):
        components = self._components()
        return [m for m in self.modalities if components.get(m) is not None]

    def build(self, input_shape):
        super().build(input_shape)
        if self.tokenizer is not None:
            # Built here so tokenizer assets are loaded when restoring.
            pad = getattr(self.tokenizer, "pad_token_id", None)
            self.packer = StartEndPacker(
                sequence_length=self.sequence_length,
                start_value=getattr(self.tokenizer, "start_token_id", None),
                end_value=getattr(self.tokenizer, "end_token_id", None),
                pad_value=0 if pad is None else pad,
                return_padding_mask=True,
                _allow_python_workflow=False,
                name="packer",
            )
        self.built = True

    # --- Eager validation -------------------------------------------------

    def _check_keys(self, x):
        return present_modalities(
            x, self.preprocessable_modalities, "MultimodalPreprocessor"
        )

    def _is_unbatched(self, x, present):
        """Whether `x` is one example; raises if modalities disagree."""
        kinds = {}
        for name in present:
            value = x[name]
            if isinstance(value, (list, tuple)):
                kinds[name] = False
                continue
            ndim = np.ndim(value) if not hasattr(value, "shape") else len(
                value.shape
            )
            if name == TEXT:
                kinds[name] = ndim == 0
            elif name == AUDIO:
                kinds[name] = ndim == 1
            else:
                shape = tuple(value.shape) if hasattr(value, "shape") else ()
                kinds[name] = ndim == 3 and shape[-1] in IMAGE_CHANNELS
        if len(set(kinds.values())) > 1:
            raise ValueError(
                "Modalities disagree on whether they hold a batch or one "
                f"example (True = one example): {kinds}. Give every modality "
                "a batch axis, or none."
            )
        return bool(kinds) and all(kinds.values())

    def _standardize_text(self, value):
        if isinstance(value, (list, tuple)):
            rows = list(value)
        else:
            value = _to_numpy(value, TEXT)
            if value.ndim != 1:
                raise ValueError(
                    "Modality 'text' expects a 1-D batch of strings "
                    f"(batch,). Received shape {value.shape}."
                )
            rows = value.tolist()
        none = [i for i, t in enumerate(rows) if t is None]
        if none:
            raise ValueError(
                f"Modality 'text' got None at rows {none[:10]}; expected a "
                "string per row. Leave the 'text' key out, or set its "
                "column of 'modality_mask' to 0 (with any placeholder "
                "string), for rows without text."
            )
        bad = [
            (i, type(t).__name__)
            for i, t in enumerate(rows)
            if not isinstance(t, (str, bytes))
        ]
        if bad:
            raise ValueError(
                "Modality 'text' expects strings (batch,). Received "
                f"non-strings (row, type): {bad[:5]}."
            )
        texts = [t.decode("utf-8") if isinstance(t, bytes) else t for t in rows]
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:
            raise ValueError(
                "Modality 'text' got empty strings at rows "
                f"{empty[:10]}; expected non-empty text. Leave the "
                "'text' key out, or set its column of "
                "'modality_mask' to 0, for rows without text."
            )
        # Unicode, not object: keras-hub then batches it as before.
        return np.array(texts)

    def _standardize_image(self, value):
        if isinstance(value, (list, tuple)):
            shapes = {np.shape(v) for v in value}
            if len(shapes) > 1:
                raise ValueError(
                    "Modality 'image' got a list of images of different "
                    f"shapes {sorted(shapes)[:4]}; resize them to one shape "
                    "first, or preprocess them one at a time."
                )
            value = np.stack([np.asarray(v) for v in value])
        image = _to_numpy(value, IMAGE)
        kind = image.dtype.kind
        if kind not in "uif":
            raise ValueError(
                "Modality 'image' expects uint8 or float pixels. Received "
                f"dtype {image.dtype}."
            )
        if image.ndim == 3:
            raise ValueError(
                "Modality 'image' expects (batch, height, width, channels). "
                f"Received shape {image.shape}: add a channel axis "
                "(`x[..., None]`) for a batch of grey images."
            )
        if image.ndim != 4:
            raise ValueError(
                "Modality 'image' expects images of shape (batch, height, "
                f"width, channels). Received shape {image.shape}."
            )
        if image.shape[1] in IMAGE_CHANNELS and (
            image.shape[3] not in IMAGE_CHANNELS
        ):
            raise ValueError(
                "Modality 'image' looks channels-first: shape "
                f"{image.shape}. Expected channels-last (batch, height, "
                "width, channels); transpose with "
                "`np.transpose(x, (0, 2, 3, 1))`."
            )
        if image.size == 0:
            return image
        if kind == "f":
            if not np.all(np.isfinite(image)):
                raise ValueError("Modality 'image' contains NaN or inf values.")
            low, high = self.image_value_range
            lo, hi = float(image.min()), float(image.max())
            slack = 1e-3 * (high - low)
            declare = (
                "Pass uint8 pixels, or declare how floats are read: "
                "`preprocessor.image_value_range = (low, high)`"
            )
            if high > 1 and low >= 0 and lo >= 0 and 0 < hi <= 1:
                raise ValueError(
                    f"Modality 'image' got float pixels all within [0, 1] "
                    f"(min {lo:.4g}, max {hi:.4g}), but this preprocessor "
                    f"reads float images as values in [{low:g}, {high:g}] "
                    f"(`image_value_range`). {declare}, e.g. (0, 1) for "
                    "images scaled to [0, 1]."
                )
            if lo < low - slack or hi > high + slack:
                raise ValueError(
                    f"Modality 'image' got float pixels in [{lo:.4g}, "
                    f"{hi:.4g}], outside image_value_range=[{low:g}, "
                    f"{high:g}] that this preprocessor reads floats as. "
                    f"{declare}."
                )
        elif image.dtype not in (np.uint8, np.uint16):
            lo, hi = int(image.min()), int(image.max())
            if lo < 0 or hi > 255:
                raise ValueError(
                    f"Modality 'image' got {image.dtype} pixels in [{lo}, "
                    f"{hi}]; integer dtypes other than uint8/uint16 are read "
                    "as 8-bit values and must lie in [0, 255]. Convert to "
                    "uint8, or to float and set `image_value_range`."
                )
        return image

    def standardize(self, x, sample_rate=None, allow_unbatched=True):
        """Checks raw inputs eagerly and returns them as batched arrays.

        Runs every check the preprocessor can make, including those that
        need the values (NaN, empty or `None` strings, pixel ranges, mask
        values, rows with no modality), converts a pandas DataFrame or
        Series into a dict, stacks lists of images, mixes stereo down,
        resamples audio declared at another `sample_rate` and pads or trims
        it (lists of clips of any length included). `MultimodalTask` calls
        it before building its `tf.data` pipeline, so bad data fails at once
        with a `ValueError` rather than deep inside a dataset.

        Args:
            x: dict (or DataFrame) of raw inputs.
            sample_rate: int or `None`, the rate of `x["audio"]` in Hz.
            allow_unbatched: whether one example (no batch axis) is taken.

        Returns:
            `(inputs, unbatched)`: a dict of numpy arrays with a batch axis
            (audio already at the converter's rate and length), and whether
            `x` was one example.

        Example:
        ```python
        inputs, unbatched = preprocessor.standardize(
            {"audio": np.zeros((2, 16000), "float32")}, sample_rate=16000
        )
        inputs["audio"].shape  # (2, 8000) for an 8 kHz, 8000-sample preset
        ```
        """
        x = _from_pandas(x, self.modalities)
        present = self._check_keys(x)
        unbatched = self._is_unbatched(x, present)
        if unbatched and not allow_unbatched:
            raise ValueError(
                "Got one example without a batch axis; add one (e.g. "
                "`{k: v[None] for k, v in x.items()}`, text as a list)."
            )
        if unbatched:
            x = {
                k: (np.asarray(v)[None] if v is not None else None)
                for k, v in x.items()
            }
        out = {}
        for name in present:
            value = x[name]
            if name == TEXT:
                out[name] = self._standardize_text(value)
            elif name == IMAGE:
                out[name] = self._standardize_image(value)
            else:
                if not isinstance(value, (list, tuple)):
                    value = _to_numpy(value, AUDIO)
                out[name] = self.audio_converter.standardize(
                    value, sample_rate=sample_rate
                )
            if len(out[name]) == 0:
                raise ValueError(
                    f"Modality '{name}' got an empty batch (shape "
                    f"{np.shape(out[name])}); expected at least one row."
                )
        batch_sizes = {name: len(out[name]) for name in present}
        mask = x.get(MODALITY_MASK)
        if mask is not None:
            mask = _to_numpy(mask, MODALITY_MASK)
            check_mask_shape(mask.shape, self.modalities)
            batch_sizes[MODALITY_MASK] = len(mask)
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(
                "All modalities must have the same batch size. Received: "
                f"{batch_sizes}"
            )
        if mask is not None:
            out[MODALITY_MASK] = check_mask_values(
                mask, self.modalities, present, "MultimodalPreprocessor"
            )
        return out, unbatched

    def check_values(self, x, sample_rate=None):
        """Checks raw inputs eagerly; see `standardize`."""
        self.standardize(x, sample_rate=sample_rate)

    # --- Preprocessing (TensorFlow, also inside tf.data) -------------------

    def _preprocess_text(self, text):
        if text.dtype != tf.string:
            raise ValueError(
                "Modality 'text' expects strings (batch,). Received dtype "
                f"{text.dtype.name} and shape {tuple(text.shape)}."
            )
        if text.shape.rank != 1:
            raise ValueError(
                "Modality 'text' expects a 1-D batch of strings (batch,). "
                f"Received shape {tuple(text.shape)}."
            )
        token_ids, padding_mask = self.packer(self.tokenizer(text))
        token_ids = tf.cast(token_ids, "int32")
        return {
            "token_ids": token_ids,
            "padding_mask": tf.cast(padding_mask, "int32"),
            "segment_ids": tf.zeros_like(token_ids),
        }

    def _preprocess_image(self, image):
        if image.shape.rank != 4:
            raise ValueError(
                "Modality 'image' expects images of shape (batch, height, "
                f"width, channels). Received shape {tuple(image.shape)}."
            )
        if not (image.dtype.is_floating or image.dtype.is_integer) or (
            image.dtype == tf.bool
        ):
            raise ValueError(
                "Modality 'image' expects uint8 or float pixels. Received "
                f"dtype {image.dtype.name}."
            )
        channels, first = image.shape[3], image.shape[1]
        if (
            first in IMAGE_CHANNELS
            and channels is not None
            and channels not in IMAGE_CHANNELS
        ):
            raise ValueError(
                "Modality 'image' looks channels-first: shape "
                f"{tuple(image.shape)}. Expected channels-last (batch, "
                "height, width, channels); transpose it."
            )
        # Map every dtype onto 8-bit values: what the converter's scale reads.
        if image.dtype == tf.uint16:
            image = tf.cast(image, "float32") / UINT16_TO_8_BIT
        elif image.dtype.is_floating:
            low, high = self.image_value_range
            if (low, high) != (0.0, 255.0):
                image = (tf.cast(image, "float32") - low) * (
                    255.0 / (high - low)
                )
        elif image.dtype != tf.uint8:
            image = tf.cast(image, "float32")
        return tf.cast(self.image_converter(image), "float32")

    def _preprocess(self, x, sample_rate=None):
        present = self._check_keys(x)
        x = {k: tf.convert_to_tensor(v) for k, v in x.items() if v is not None}
        unbatched = {}
        for name in present:
            rank = x[name].shape.rank
            unbatched[name] = (
                (name == TEXT and rank == 0)
                or (name == AUDIO and rank == 1)
                or (name == IMAGE and rank == 3)
            )
        if len(set(unbatched.values())) > 1:
            raise ValueError(
                "Modalities disagree on whether they hold a batch or one "
                f"example (True = one example): {unbatched}. Give every "
                "modality a batch axis, or none."
            )
        one = all(unbatched.values())
        if one:
            x = {k: v[tf.newaxis] for k, v in x.items()}
        outputs = {}
        for name in present:
            if name == TEXT:
                outputs[name] = self._preprocess_text(x[name])
            elif name == IMAGE:
                outputs[name] = self._preprocess_image(x[name])
            else:
                outputs[name] = self.audio_converter(
                    x[name], sample_rate=sample_rate
                )
        batch_sizes = {
            name: x[name].shape[0]
            for name in present
            if x[name].shape.rank and x[name].shape[0] is not None
        }
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(
                "All modalities must have the same batch size. Received: "
                f"{batch_sizes}"
            )
        first = tf.nest.flatten(outputs[present[0]])[0]
        batch_size = tf.shape(first)[0]
        presence = tf.constant(
            [[1 if m in present else 0 for m in self.modalities]], "int32"
        )
        mask = tf.ones((batch_size, len(self.modalities)), "int32")
        if MODALITY_MASK in x:
            given = x[MODALITY_MASK]
            check_mask_shape(given.shape, self.modalities)
            if not (given.dtype.is_integer or given.dtype.is_floating) and (
                given.dtype != tf.bool
            ):
                raise ValueError(
                    "'modality_mask' must hold 0/1 (bool or int). Received "
                    f"dtype {given.dtype.name}."
                )
            # Values are checked eagerly by `standardize`; inside a dataset
            # a bad batch stops the pipeline with these messages instead.
            binary = tf.reduce_all(
                tf.logical_or(
                    tf.equal(tf.cast(given, "float32"), 0.0),
                    tf.equal(tf.cast(given, "float32"), 1.0),
                )
            )
            rows = tf.reduce_sum(tf.cast(given, "float32") * tf.cast(
                presence, "float32"
            ), axis=-1)
            checks = [
                tf.debugging.Assert(
                    binary,
                    ["'modality_mask' must hold only 0 (missing) or 1 "
                     f"(present), one column per modality in "
                     f"{self.modalities}."],
                ),
                tf.debugging.Assert(
                    tf.reduce_all(rows > 0),
                    ["A row of 'modality_mask' leaves no modality present; "
                     "every row needs at least one."],
                ),
            ]
            with tf.control_dependencies(checks):
                mask = tf.cast(tf.cast(given, "bool"), "int32")
        outputs[MODALITY_MASK] = mask * presence
        if batch_sizes:
            # Keep a known batch size on every output (the tokenizer and
            # the mask lose it): `keras.distribution` reads it to split a
            # dataset across processes.
            static = next(iter(batch_sizes.values()))
            outputs = tf.nest.map_structure(
                lambda t: tf.ensure_shape(t, [static] + t.shape[1:]),
                outputs,
            )
        if one:
            outputs = tf.nest.map_structure(lambda t: t[0], outputs)
        return outputs

    def call(self, x, y=None, sample_weight=None, sample_rate=None):
        if not self.built:
            self.build(None)
        if in_tf_function():
            x = self._preprocess(x, sample_rate=sample_rate)
        else:
            x, unbatched = self.standardize(x, sample_rate=sample_rate)
            if self._traced_preprocess is None:
                self._traced_preprocess = tf.function(
                    self._preprocess, reduce_retracing=True
                )
            with tf.device("cpu"):
                # Audio is at the converter's rate already.
                x = self._traced_preprocess(x)
            if unbatched:
                x = tf.nest.map_structure(lambda t: t[0], x)
            x = convert_preprocessing_outputs(x)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "modalities": self.modalities,
                "image_value_range": list(self.image_value_range),
            }
        )
        return config

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Instantiate from a preset; a local preset's JSON and asset files
        are checked first (`preset_weights.check_local_preset`)."""
        from mmzoo.utils import preset_weights

        preset_weights.check_local_preset(preset, check_weights=False)
        return super().from_preset(preset, **kwargs)

    def save_to_preset(self, preset_dir):
        """Save to a preset folder, atomically; saved on its own it joins
        the model already there (`preset_weights.save_preprocessor`)."""
        from mmzoo.utils import preset_weights

        preset_weights.save_preprocessor(super().save_to_preset, preset_dir)
