import keras
import numpy as np
import tensorflow as tf
from keras_hub.layers import StartEndPacker
from keras_hub.models import Preprocessor
from keras_hub.src.utils.tensor_utils import convert_preprocessing_outputs
from keras_hub.src.utils.tensor_utils import in_tf_function

from mmzoo.api_export import mmzoo_export
from mmzoo.utils.modality_checks import MODALITY_MASK
from mmzoo.utils.modality_checks import check_mask_shape
from mmzoo.utils.modality_checks import present_modalities

TEXT, IMAGE, AUDIO = "text", "image", "audio"


def _to_numpy(x):
    if isinstance(x, (tf.Tensor, tf.RaggedTensor)):
        return x.numpy()
    if keras.ops.is_tensor(x):
        return keras.ops.convert_to_numpy(x)
    return np.asarray(x)


def _is_string_array(x):
    return x.dtype.kind in ("U", "S") or (
        x.dtype.kind == "O" and x.size and isinstance(x.flat[0], (str, bytes))
    )


@mmzoo_export("mmzoo.models.MultimodalPreprocessor")
class MultimodalPreprocessor(Preprocessor):
    """Turns raw text, images and waveforms into `MultimodalBackbone` inputs.

    Input is a dict with any of:
    - `"text"`: a batch of strings `(batch,)`, tokenized with `tokenizer` (a
      keras-hub tokenizer, e.g. a WordPiece `keras_hub.tokenizers.
      BertTokenizer`) and packed to `sequence_length` with its start/end
      tokens, giving `{"token_ids", "padding_mask", "segment_ids"}`;
    - `"image"`: `(batch, height, width, channels)` uint8 or float images,
      resized and scaled by `image_converter` (a keras-hub `ImageConverter`);
    - `"audio"`: float waveforms `(batch, samples)`, padded or trimmed by
      `audio_converter` (a `mmzoo.layers.WaveformConverter`);
    - `"modality_mask"`: optional `(batch, num_modalities)` 0/1 array, columns
      in `self.modalities` order, for batches where some rows lack a
      modality.

    Leaving a modality's key out means it is missing: its mask column is 0
    for the batch and `MultimodalBackbone` runs a zero placeholder through
    its encoder. The output always carries `"modality_mask"`.

    Bad input raises a `ValueError` naming the modality, what was expected
    and what arrived: an unknown key, no known modality, a wrong rank or
    dtype, mismatched batch sizes, empty strings or zero-length audio.
    Preprocessing runs on `tf.data` inside `fit`/`predict`/`evaluate`.

    Args:
        tokenizer: keras-hub tokenizer for `"text"`, or `None`.
        image_converter: `keras_hub.layers.ImageConverter` for `"image"`, or
            `None`.
        audio_converter: `mmzoo.layers.WaveformConverter` for `"audio"`, or
            `None`.
        sequence_length: int. Packed text length, special tokens included.
        modalities: list of modality names in the backbone's order (the mask
            column order). Defaults to those with a component, in the order
            text, image, audio.

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
    ```
    """

    def __init__(
        self,
        tokenizer=None,
        image_converter=None,
        audio_converter=None,
        sequence_length=64,
        modalities=None,
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
        self.sequence_length = int(sequence_length)
        self.modalities = modalities
        self.packer = None
        self._traced_preprocess = None

    def _components(self):
        return {
            TEXT: self.tokenizer,
            IMAGE: self.image_converter,
            AUDIO: self.audio_converter,
        }

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

    # --- Validation -------------------------------------------------------

    def _check_keys(self, x):
        return present_modalities(
            x, self.preprocessable_modalities, "MultimodalPreprocessor"
        )

    def check_values(self, x):
        """Checks raw inputs eagerly, including data-dependent checks.

        Everything `call` checks from shapes and dtypes, plus what needs the
        values: empty strings and NaN/inf samples. `MultimodalClassifier`
        calls this before building its `tf.data` pipeline, so bad data fails
        with a `ValueError` at once rather than deep inside a dataset.
        """
        present = self._check_keys(x)
        batch_sizes = {}
        for name in present + [MODALITY_MASK]:
            if x.get(name) is None:
                continue
            try:
                value = _to_numpy(x[name])
            except ValueError as e:
                raise ValueError(
                    f"Modality '{name}' could not be read as an array "
                    f"(ragged lists are not supported): {e}"
                ) from e
            if value.ndim == 0:
                raise ValueError(
                    f"Modality '{name}' needs a batch dimension. Received a "
                    f"scalar: {value!r}"
                )
            batch_sizes[name] = value.shape[0]
            if value.shape[0] == 0:
                raise ValueError(
                    f"Modality '{name}' got an empty batch (shape "
                    f"{value.shape}); expected at least one row."
                )
            if name == TEXT:
                if not _is_string_array(value):
                    raise ValueError(
                        "Modality 'text' expects strings (batch,). Received "
                        f"dtype {value.dtype} and shape {value.shape}."
                    )
                texts = [
                    t.decode("utf-8") if isinstance(t, bytes) else str(t)
                    for t in value.reshape(-1)
                ]
                empty = [i for i, t in enumerate(texts) if not t.strip()]
                if empty:
                    raise ValueError(
                        "Modality 'text' got empty strings at rows "
                        f"{empty[:10]}; expected non-empty text. Leave the "
                        "'text' key out, or set its column of "
                        "'modality_mask' to 0, for rows without text."
                    )
            elif name in (IMAGE, AUDIO) and value.dtype.kind == "f":
                if not np.all(np.isfinite(value)):
                    raise ValueError(
                        f"Modality '{name}' contains NaN or inf values."
                    )
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(
                "All modalities must have the same batch size. Received: "
                f"{batch_sizes}"
            )

    # --- Preprocessing ----------------------------------------------------

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
        if not (image.dtype.is_floating or image.dtype.is_integer):
            raise ValueError(
                "Modality 'image' expects uint8 or float pixels. Received "
                f"dtype {image.dtype.name}."
            )
        return tf.cast(self.image_converter(image), "float32")

    def _preprocess(self, x):
        present = self._check_keys(x)
        x = {k: tf.convert_to_tensor(v) for k, v in x.items() if v is not None}
        outputs = {}
        for name in present:
            if name == TEXT:
                outputs[name] = self._preprocess_text(x[name])
            elif name == IMAGE:
                outputs[name] = self._preprocess_image(x[name])
            else:
                outputs[name] = self.audio_converter(x[name])
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
            mask = tf.cast(tf.cast(given, "bool"), "int32")
        outputs[MODALITY_MASK] = mask * presence
        return outputs

    def call(self, x, y=None, sample_weight=None):
        if not self.built:
            self.build(None)
        if in_tf_function():
            x = self._preprocess(x)
        else:
            self.check_values(x)
            if self._traced_preprocess is None:
                self._traced_preprocess = tf.function(
                    self._preprocess, reduce_retracing=True
                )
            x = {k: _to_numpy(v) for k, v in x.items() if v is not None}
            with tf.device("cpu"):
                x = self._traced_preprocess(x)
            x = convert_preprocessing_outputs(x)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "modalities": self.modalities,
            }
        )
        return config
