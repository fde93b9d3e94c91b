import keras
from keras import ops

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.cross_modal_transformer import CrossModalTransformer
from mmzoo.layers.fusion.modality_fusion import ModalityFusion


@mmzoo_export("mmzoo.layers.CrossModalAttentionFusion")
class CrossModalAttentionFusion(ModalityFusion):
    """MulT-style fusion: every modality attends to every other one.

    Each modality is projected to `hidden_dim`, `p_m = W_m · x_m` (MulT's
    1-wide temporal convolution, no bias). For every ordered pair of
    modalities a `CrossModalTransformer` lets the target's steps attend to
    the source's steps (lengths may differ: the sequences need not be
    aligned):

        c_{m←n} = CrossModalTransformer_{m←n}(target=p_m, source=p_n),
        h_m = mean_steps([c_{m←n} for n ≠ m]),
        h = [h_1; ...; h_M],

    of width `M (M - 1) hidden_dim`. MulT follows the concatenation with a
    self-attention transformer per target and takes its last step; here the
    target's steps are averaged instead (a vector modality is one step).

    A masked source gives its pairs an attention term of exactly 0 (the
    target goes through its residual and feed-forward paths alone); a
    masked target's slot `h_m` is all zeros. So a masked modality
    contributes exactly nothing, and with one modality present the output
    still depends on it.

    Args:
        hidden_dim: int. Width of the projections and of each pair's output.
        num_heads: int. Attention heads; must divide `hidden_dim`.
        num_layers: int. Layers of each cross-modal transformer.
        dropout: float. Dropout inside the transformers.
        kernel_initializer: initializer for all kernels.
        modalities: optional list of names fixing the mask column order and
            the output slots. Defaults to the sorted keys of the first input.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` of vectors `(batch, dim_m)` or
            sequences `(batch, steps_m, dim_m)` (steps may differ).
        modality_mask: optional `(batch, num_modalities)` tensor, nonzero
            where a modality is present.

    Returns:
        A `(batch, M (M - 1) hidden_dim)` tensor.

    Example:
    ```python
    fusion = mmzoo.layers.CrossModalAttentionFusion(hidden_dim=8)
    inputs = {"audio": np.ones((2, 50, 24)), "text": np.ones((2, 7, 32))}
    fusion(inputs).shape  # (2, 16): text←audio and audio←text.
    ```

    Reference:
        [Tsai et al., 2019](https://arxiv.org/abs/1906.00295), "Multimodal
        Transformer for Unaligned Multimodal Language Sequences", ACL.
    """

    def __init__(
        self,
        hidden_dim,
        num_heads=1,
        num_layers=1,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
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

    def build_modalities(self, feature_dims):
        if len(self.modalities) < 2:
            raise ValueError(
                "CrossModalAttentionFusion needs at least two modalities. "
                f"Received {self.modalities}."
            )
        self.build_projections(
            feature_dims,
            self.hidden_dim,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
        )
        self.transformers = {}
        for target in self.modalities:
            for source in self.modalities:
                if source == target:
                    continue
                name = f"{target}_from_{source}"
                block = CrossModalTransformer(
                    self.hidden_dim,
                    num_heads=self.num_heads,
                    num_layers=self.num_layers,
                    dropout=self.dropout,
                    kernel_initializer=self.clone_initializer(
                        self.kernel_initializer
                    ),
                    dtype=self.dtype_policy,
                    name=name,
                )
                block.build((None, None, self.hidden_dim))
                self.transformers[name] = block

    def fuse(self, features, mask, training=None):
        # A vector modality is one step; masked rows are 0 (absent
        # modalities come back as zeros, but stay absent below).
        steps = [
            x if x is None or len(x.shape) == 3 else ops.expand_dims(x, 1)
            for x in features
        ]
        projected = self.project(steps, mask)
        projected = [
            None if x is None else p for x, p in zip(features, projected)
        ]
        first = next(p for p in projected if p is not None)
        width = (len(self.modalities) - 1) * self.hidden_dim
        slots = []
        for t, target in enumerate(self.modalities):
            if projected[t] is None:
                slots.append(
                    ops.zeros((ops.shape(first)[0], width), first.dtype)
                )
                continue
            pairs = []
            for s, source in enumerate(self.modalities):
                if s == t:
                    continue
                block = self.transformers[f"{target}_from_{source}"]
                pairs.append(
                    block(
                        projected[t],
                        projected[s],
                        source_mask=(
                            None if projected[s] is None else mask[:, s]
                        ),
                        training=training,
                    )
                )
            slot = ops.mean(ops.concatenate(pairs, axis=-1), axis=1)
            column = self.mask_column(mask, t, 2)
            slots.append(ops.where(column, slot, ops.zeros_like(slot)))
        return ops.concatenate(slots, axis=-1)

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
