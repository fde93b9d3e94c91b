import keras
from keras_hub.layers import TokenAndPositionEmbedding
from keras_hub.layers import TransformerEncoder
from keras_hub.models import Backbone

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.masked_average_pooling import MaskedAveragePooling


@mmzoo_export("mmzoo.models.TextEncoder")
class TextEncoder(Backbone):
    """A transformer text encoder: token + position embedding, N blocks.

    Token ids are embedded with learned token and position embeddings, passed
    through `num_layers` `keras_hub.layers.TransformerEncoder` blocks that
    honour the padding mask, and mean-pooled over the real (unpadded) tokens.

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        num_layers: int. Number of transformer blocks.
        num_heads: int. Attention heads per block.
        hidden_dim: int. Width of the embeddings and outputs.
        intermediate_dim: int. Width of each block's feed-forward layer.
        dropout: float. Dropout rate in the embeddings and blocks.
        max_sequence_length: int. Longest sequence the position embedding
            covers.
        dtype: string or `keras.mixed_precision.DTypePolicy`. The dtype
            policy for computations and weights.

    Inputs:
        A dict with `"token_ids"` `(batch, steps)` ints and `"padding_mask"`
        `(batch, steps)`, nonzero for real tokens, and optionally
        `"segment_ids"` `(batch, steps)`, which is accepted and ignored (the
        encoder has no segment embedding; the preprocessor emits it, all
        zeros, so `encoder(preprocessor(x)["text"])` needs no key dropped).

    Outputs:
        A dict with `"sequence_output"` `(batch, steps, hidden_dim)` and
        `"pooled_output"` `(batch, hidden_dim)`, the masked mean. A row whose
        padding mask is all zero pools to zeros.

    Example:
    ```python
    encoder = mmzoo.models.TextEncoder(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=8,
    )
    outputs = encoder({
        "token_ids": np.ones((2, 8), "int32"),
        "padding_mask": np.ones((2, 8), "int32"),
    })
    outputs["pooled_output"].shape  # (2, 16)
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        self.embeddings = TokenAndPositionEmbedding(
            vocabulary_size=vocabulary_size,
            sequence_length=max_sequence_length,
            embedding_dim=hidden_dim,
            dtype=dtype,
            name="embeddings",
        )
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = [
            TransformerEncoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.pooler = MaskedAveragePooling(dtype=dtype, name="pooler")

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        )
        # Accepted so preprocessor outputs are model inputs; not used.
        segment_ids = keras.Input(
            shape=(None,), dtype="int32", name="segment_ids", optional=True
        )
        x = self.embeddings(token_ids)
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask)
        pooled = self.pooler(x, padding_mask=padding_mask)
        super().__init__(
            inputs={
                "token_ids": token_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            },
            outputs={"sequence_output": x, "pooled_output": pooled},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length

    @staticmethod
    def _fill_segment_ids(inputs):
        # `segment_ids` is optional: a dict without it gets `None`, which
        # Keras' optional inputs take.
        if isinstance(inputs, dict) and "segment_ids" not in inputs:
            inputs = {**inputs, "segment_ids": None}
        return inputs

    def __call__(self, inputs, *args, **kwargs):
        # Eager and symbolic calls check inputs before `call`.
        return super().__call__(self._fill_segment_ids(inputs), *args, **kwargs)

    def call(self, inputs, *args, **kwargs):
        # `fit`/`predict` reach `call` without `__call__` on some backends.
        return super().call(self._fill_segment_ids(inputs), *args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
            }
        )
        return config
