import keras
from keras import ops

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.fusion.modality_fusion import ModalityFusion
from mmzoo.layers.fusion.modality_fusion import masked_softmax


@mmzoo_export("mmzoo.layers.AttentionFusion")
class AttentionFusion(ModalityFusion):
    """Softmax attention over modality tokens.

    Each modality is projected to `output_dim`, `x_i = W_m · v_i + b_m`; a
    vector modality is one token, a sequence contributes one token per step.
    With one head the fused vector is the attention-weighted sum

        h = Σ_i softmax_i(aᵀ x_i) · x_i,

    where `a` is a learned query vector. With `num_heads` heads, the tokens
    are split into `num_heads` slices of `output_dim // num_heads` features,
    each head has its own query `a_k` over its slice, and the heads' outputs
    are concatenated back to `output_dim`.

    Masked tokens get a weight of exactly 0; a row where only one modality
    (of one token) is present gives it weight 1; a row with nothing present
    gives all-zero weights and a zero output, never NaN. The softmax runs in
    float32 under mixed precision.

    Args:
        output_dim: int. Width of the tokens and the fused output; must be
            divisible by `num_heads`.
        num_heads: int. Number of attention heads.
        use_bias: bool. Whether the projections have biases.
        kernel_initializer: initializer for the projections and queries.
        modalities: optional list of names fixing the mask column order.
            Defaults to the sorted keys of the first input.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` of vectors `(batch, dim_m)` or
            sequences `(batch, steps_m, dim_m)` (steps may differ).
        modality_mask: optional `(batch, num_modalities)` tensor, nonzero
            where a modality is present.
        return_attention_scores: bool. If `True`, also return the weights.

    Returns:
        The fused `(batch, output_dim)` tensor, and with
        `return_attention_scores=True` a tuple `(fused, scores)` where
        `scores` has shape `(batch, num_heads, num_tokens)`; for vector
        inputs `num_tokens == num_modalities`, in `self.modalities` order,
        and for sequences the modalities' steps follow one another.

    Example:
    ```python
    fusion = mmzoo.layers.AttentionFusion(output_dim=16, num_heads=2)
    inputs = {"audio": np.ones((2, 24)), "image": np.ones((2, 64))}
    fused, scores = fusion(inputs, return_attention_scores=True)
    scores.shape  # (2, 2, 2): which modality each head listened to.
    ```

    Reference:
        The seed formula of mmzoo's design card; the weighting is the
        additive-attention pooling of
        [Bahdanau et al., 2015](https://arxiv.org/abs/1409.0473) with a
        single learned query.
    """

    def __init__(
        self,
        output_dim,
        num_heads=1,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
        if output_dim % num_heads:
            raise ValueError(
                "`output_dim` must be divisible by `num_heads`. Received: "
                f"output_dim={output_dim}, num_heads={num_heads}"
            )
        self.output_dim = int(output_dim)
        self.num_heads = int(num_heads)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_modalities(self, feature_dims):
        self.build_projections(
            feature_dims,
            self.output_dim,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
        )
        self.query = self.add_weight(
            name="query",
            shape=(self.num_heads, self.output_dim // self.num_heads),
            initializer=self.clone_initializer(self.kernel_initializer),
        )

    def call(
        self,
        inputs,
        modality_mask=None,
        return_attention_scores=False,
        training=None,
    ):
        features, mask = self.standardize(inputs, modality_mask)
        fused, scores = self.fuse(features, mask, training=training)
        if return_attention_scores:
            return fused, scores
        return fused

    def fuse(self, features, mask, training=None):
        tokens = self.project(features, mask)
        if len(tokens[0].shape) == 2:
            tokens = [ops.expand_dims(h, 1) for h in tokens]
        batch_size = ops.shape(tokens[0])[0]
        token_masks = []
        for index, h in enumerate(tokens):
            # A sequence modality contributes one token per step.
            column = ops.cast(mask[:, index : index + 1], "bool")
            token_masks.append(ops.repeat(column, ops.shape(h)[1], axis=1))
        # (batch, tokens, width) and (batch, tokens)
        tokens = ops.concatenate(tokens, axis=1)
        token_mask = ops.concatenate(token_masks, axis=1)
        head_dim = self.output_dim // self.num_heads
        heads = ops.reshape(tokens, (batch_size, -1, self.num_heads, head_dim))
        query = ops.cast(self.query, heads.dtype)
        logits = ops.einsum("bthd,hd->bht", heads, query)
        logits = ops.cast(logits, "float32")
        head_mask = ops.expand_dims(token_mask, 1)
        # Masked tokens get exactly 0, a lone token 1, an empty row 0.
        weights = masked_softmax(logits, head_mask, axis=-1)
        weights = ops.cast(weights, self.compute_dtype)
        fused = ops.einsum("bht,bthd->bhd", weights, heads)
        fused = ops.reshape(fused, (batch_size, self.output_dim))
        return fused, weights

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "num_heads": self.num_heads,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
