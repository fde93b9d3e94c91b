"""Tokenizer mixin: the TensorFlow graph of `tokenize` is traced once."""

import weakref

from keras_hub.src.utils.tensor_utils import in_tf_function

try:
    import tensorflow as tf
except ImportError:  # keras-hub's Python workflow only.
    tf = None


class TokenizeTracedOnce:
    """Tokenizer mixin: keeps the traced TensorFlow graph of `tokenize`.

    keras-hub tokenizers run TensorFlow ops inside `tf.data`, the path every
    `fit`, `predict` and `evaluate` of a task with a preprocessor takes, on
    every backend. Each new pipeline traces `tokenize` again: for Whisper's
    byte-level BPE that is about 3,000 ops and several seconds per call.
    With this mixin, the first trace is kept (a `tf.function` per input
    rank, `sequence_length`, output dtype and vocabulary tables) and later
    pipelines call it instead of tracing again. The ops, and so the tokens,
    are the same; eager calls (keras-hub's Python workflow) are untouched.

    Put it before the keras-hub tokenizer in the bases:
    `class MyTokenizer(TokenizeTracedOnce, keras_hub.models.BertTokenizer)`.
    """

    def _tokenize_tf(self, inputs):
        if (
            tf is None
            or not in_tf_function()
            or self.__dict__.get("_tracing_tokenize", False)
            or isinstance(inputs, tf.RaggedTensor)
        ):
            return super()._tokenize_tf(inputs)
        inputs = tf.convert_to_tensor(inputs)
        rank = inputs.shape.rank
        if inputs.dtype != tf.string or rank not in (0, 1):
            return super()._tokenize_tf(inputs)
        self._maybe_initialized_tf()
        # New vocabulary tables (`set_vocabulary...`) get a new graph.
        tables = tuple(
            id(getattr(self, name, None))
            for name in ("cache", "token_to_id_map", "_fast_word_piece")
        )
        key = (rank, self.sequence_length, str(self.compute_dtype), tables)
        traced = self.__dict__.setdefault("_traced_tokenize", {})
        if key not in traced:
            traced[key] = _traced_tokenize(self, rank)
        return traced[key](inputs)


def _traced_tokenize(tokenizer, rank):
    # A weak reference: the tokenizer holds the function, not the reverse.
    reference = weakref.ref(tokenizer)

    def tokenize(inputs):
        layer = reference()
        layer.__dict__["_tracing_tokenize"] = True
        try:
            # Now the keras-hub tokenizer's own `_tokenize_tf` runs.
            return layer._tokenize_tf(inputs)
        finally:
            layer.__dict__["_tracing_tokenize"] = False

    return tf.function(
        tokenize,
        input_signature=[tf.TensorSpec([None] * rank, tf.string)],
        autograph=False,
    )
