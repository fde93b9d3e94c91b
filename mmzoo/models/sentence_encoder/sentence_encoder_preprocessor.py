import numpy as np
import tensorflow as tf
from keras_hub.models import TextClassifierPreprocessor

from mmzoo.api_export import mmzoo_export
from mmzoo.models.sentence_encoder.sentence_encoder import SentenceEncoder
from mmzoo.models.sentence_encoder.sentence_encoder_tokenizer import (
    SentenceEncoderTokenizer,
)
from mmzoo.presets import check_preset


@mmzoo_export("mmzoo.models.SentenceEncoderPreprocessor")
class SentenceEncoderPreprocessor(TextClassifierPreprocessor):
    """Turns strings into `SentenceEncoder` inputs.

    Tokenizes with a `SentenceEncoderTokenizer`, adds `[CLS]` and `[SEP]`,
    truncates to `sequence_length` (special tokens included, as
    sentence-transformers' `max_seq_length`) and pads, giving
    `{"token_ids", "segment_ids", "padding_mask"}`. With labels it passes
    them through, so it works inside `fit`.

    Args:
        tokenizer: a `mmzoo.models.SentenceEncoderTokenizer`.
        sequence_length: int. Length of the packed sequences. Defaults to
            256, all-MiniLM-L6-v2's `max_seq_length`.
        truncate: string. How keras-hub's `MultiSegmentPacker` truncates;
            for one segment both modes keep the first tokens.

    Example:
    ```python
    preprocessor = mmzoo.models.SentenceEncoderPreprocessor.from_preset(
        "minilm_l6_en"
    )
    x = preprocessor(["A café.", "Another sentence."])
    x["token_ids"].shape  # (2, 256)
    ```
    """

    backbone_cls = SentenceEncoder
    tokenizer_cls = SentenceEncoderTokenizer

    def __init__(self, tokenizer, sequence_length=256, **kwargs):
        super().__init__(
            tokenizer=tokenizer, sequence_length=sequence_length, **kwargs
        )
        # One TensorFlow path, in `tf.data` and eagerly alike.
        self._allow_python_workflow = False

    @staticmethod
    def check_text(x):
        """Raise a clear `ValueError` unless `x` is a batch of strings."""
        segments = x if isinstance(x, tuple) else (x,)
        for segment in segments:
            if isinstance(segment, (tf.Tensor, tf.RaggedTensor)):
                dtype, shape = segment.dtype, tuple(segment.shape)
                is_string = dtype == tf.string
            else:
                if isinstance(segment, str):
                    segment = [segment]
                array = np.asarray(segment)
                dtype, shape = array.dtype, array.shape
                is_string = array.dtype.kind in ("U", "S") or (
                    array.dtype.kind == "O"
                    and all(isinstance(t, (str, bytes)) for t in array.flat)
                )
            if not is_string:
                raise ValueError(
                    "SentenceEncoderPreprocessor expects text: a string or "
                    f"a batch of strings (batch,). Received dtype {dtype} "
                    f"and shape {shape}."
                )
            if len(shape) > 1:
                raise ValueError(
                    "SentenceEncoderPreprocessor expects a 1-D batch of "
                    f"strings (batch,). Received shape {shape}."
                )
            if len(shape) == 1 and shape[0] == 0:
                raise ValueError(
                    "SentenceEncoderPreprocessor got an empty batch (0 "
                    "strings); expected at least one."
                )

    def call(self, x, y=None, sample_weight=None):
        self.check_text(x)
        return super().call(x, y=y, sample_weight=sample_weight)

    @classmethod
    def from_preset(cls, preset, config_file="preprocessor.json", **kwargs):
        """Instantiate from a preset, e.g. `"minilm_l6_en"`; a local
        preset's JSON and asset files are checked first."""
        from mmzoo.utils import preset_weights

        check_preset(preset)
        preset_weights.check_local_preset(preset, check_weights=False)
        return super().from_preset(preset, config_file=config_file, **kwargs)

    def save_to_preset(self, preset_dir):
        """Save to a preset folder, atomically; saved on its own it joins
        the model already there (`preset_weights.save_preprocessor`)."""
        from mmzoo.utils import preset_weights

        preset_weights.save_preprocessor(super().save_to_preset, preset_dir)
