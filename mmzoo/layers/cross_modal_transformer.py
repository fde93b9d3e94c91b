import math

import keras
from keras import ops

from mmzoo.api_export import mmzoo_export


@mmzoo_export("mmzoo.layers.CrossModalTransformer")
class CrossModalTransformer(keras.layers.Layer):
    """MulT's cross-modal transformer: a target sequence attends to a source.

    The target `x` (queries) and the source `s` (keys and values), both
    `hidden_dim` wide, are scaled by `sqrt(hidden_dim)`; then each of
    `num_layers` pre-norm layers computes

        x = x + MultiHeadAttention(LN_1(x), LN_1(s), LN_1(s))
        x = x + W_2 · relu(W_1 · LN_2(x) + b_1) + b_2

    (`W_1` is `4 × hidden_dim` wide; the layer's first norm is shared by
    target and source, as in MulT), and a final layer norm follows. The
    target's sequence keeps its length; the source's may differ.

    With `source_mask` (one bool per row), a row whose source is absent gets
    an attention term of exactly 0: its target passes through the residual
    and feed-forward paths alone. Passing `source=None` does that for the
    whole batch.

    Args:
        hidden_dim: int. Width of target, source and output.
        num_heads: int. Attention heads; must divide `hidden_dim`.
        num_layers: int. Number of layers.
        dropout: float. Dropout of the attention weights, the residual
            branches and the feed-forward hidden layer.
        kernel_initializer: initializer for the dense kernels.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        target: `(batch, target_steps, hidden_dim)`.
        source: `(batch, source_steps, hidden_dim)` or `None`.
        source_mask: optional bool `(batch,)`, true where the row's source
            is present.

    Returns:
        `(batch, target_steps, hidden_dim)`.

    Example:
    ```python
    block = mmzoo.layers.CrossModalTransformer(hidden_dim=16, num_heads=2)
    text, audio = np.ones((2, 5, 16)), np.ones((2, 50, 16))
    block(text, audio).shape  # (2, 5, 16): text enriched by audio.
    ```

    Reference:
        [Tsai et al., 2019](https://arxiv.org/abs/1906.00295), "Multimodal
        Transformer for Unaligned Multimodal Language Sequences", ACL; the
        layer is MMSA's and the authors' `TransformerEncoder` with its
        defaults (no positional embedding, no causal mask).
    """

    def __init__(
        self,
        hidden_dim,
        num_heads=1,
        num_layers=1,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(
                "`hidden_dim` must be divisible by `num_heads`. Received: "
                f"hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        def initializer():
            config = keras.initializers.serialize(self.kernel_initializer)
            return keras.initializers.get(config)

        policy = self.dtype_policy
        self.attention_norms, self.attentions = [], []
        self.feedforward_norms, self.intermediates, self.output_denses = (
            [],
            [],
            [],
        )
        for i in range(self.num_layers):
            self.attention_norms.append(
                keras.layers.LayerNormalization(
                    epsilon=1e-5, dtype=policy, name=f"layer_{i}_attention_norm"
                )
            )
            self.attentions.append(
                keras.layers.MultiHeadAttention(
                    num_heads=self.num_heads,
                    key_dim=self.hidden_dim // self.num_heads,
                    dropout=self.dropout,
                    kernel_initializer=initializer(),
                    dtype=policy,
                    name=f"layer_{i}_attention",
                )
            )
            self.feedforward_norms.append(
                keras.layers.LayerNormalization(
                    epsilon=1e-5,
                    dtype=policy,
                    name=f"layer_{i}_feedforward_norm",
                )
            )
            self.intermediates.append(
                keras.layers.Dense(
                    4 * self.hidden_dim,
                    activation="relu",
                    kernel_initializer=initializer(),
                    dtype=policy,
                    name=f"layer_{i}_intermediate",
                )
            )
            self.output_denses.append(
                keras.layers.Dense(
                    self.hidden_dim,
                    kernel_initializer=initializer(),
                    dtype=policy,
                    name=f"layer_{i}_output",
                )
            )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=policy, name="output_norm"
        )

    def build(self, target_shape, source_shape=None, source_mask_shape=None):
        target_shape = tuple(target_shape)
        if target_shape[-1] != self.hidden_dim:
            raise ValueError(
                f"CrossModalTransformer expects inputs {self.hidden_dim} "
                f"wide. Received target shape {target_shape}."
            )
        hidden_shape = target_shape[:-1] + (4 * self.hidden_dim,)
        for i in range(self.num_layers):
            self.attention_norms[i].build(target_shape)
            self.attentions[i].build(target_shape, target_shape, target_shape)
            self.feedforward_norms[i].build(target_shape)
            self.intermediates[i].build(target_shape)
            self.output_denses[i].build(hidden_shape)
        self.output_norm.build(target_shape)
        self.built = True

    def call(self, target, source=None, source_mask=None, training=None):
        if source is not None and source.shape[-1] != self.hidden_dim:
            raise ValueError(
                f"CrossModalTransformer expects inputs {self.hidden_dim} "
                f"wide. Received source shape {tuple(source.shape)}."
            )
        scale = ops.cast(math.sqrt(self.hidden_dim), self.compute_dtype)
        x = ops.cast(target, self.compute_dtype) * scale
        if source is not None:
            source = ops.cast(source, self.compute_dtype) * scale
        if source_mask is not None:
            source_mask = ops.reshape(ops.cast(source_mask, "bool"), (-1, 1, 1))
        for i in range(self.num_layers):
            if source is not None:
                norm = self.attention_norms[i]
                key = norm(source)
                attended = self.attentions[i](
                    norm(x), key, key, training=training
                )
                if source_mask is not None:
                    attended = ops.where(
                        source_mask, attended, ops.zeros_like(attended)
                    )
                x = x + self.dropout_layer(attended, training=training)
            h = self.intermediates[i](self.feedforward_norms[i](x))
            h = self.dropout_layer(h, training=training)
            h = self.output_denses[i](h)
            x = x + self.dropout_layer(h, training=training)
        return self.output_norm(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "num_layers": self.num_layers,
                "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
