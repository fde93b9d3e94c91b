import keras
from keras import ops

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.fusion.modality_fusion import ModalityFusion


@mmzoo_export("mmzoo.layers.LateFusion")
class LateFusion(ModalityFusion):
    """Late fusion: one head per modality, their outputs averaged.

    Each modality makes its own prediction with its own head (a hidden
    layer, if `hidden_dim` is set, then a dense output layer), and the
    predictions are averaged over the modalities present:

        s_m = W_m · activation(V_m · x_m + c_m) + b_m,
        h = Σ_m mask_m · s_m / max(Σ_m mask_m, 1).

    The modalities never meet before the average, so no feature of one can
    modulate another's: the baseline every joint fusion is measured
    against. Used with `output_dim` equal to the number of classes, `s_m`
    are per-modality logits (a task's output layer on top is then a linear
    map of their average).

    A masked modality is left out of the average and contributes exactly
    nothing; a row with nothing present is 0.

    Args:
        output_dim: int. Width of each head's output and of the average.
        hidden_dim: optional int. Width of each head's hidden layer; without
            it each head is one dense layer.
        activation: activation of the hidden layers.
        use_bias: bool. Whether the dense layers have biases.
        kernel_initializer: initializer for the dense kernels.
        modalities: optional list of names fixing the mask column order.
            Defaults to the sorted keys of the first input.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` of vectors `(batch, dim_m)` or
            time-aligned sequences `(batch, steps, dim_m)`.
        modality_mask: optional `(batch, num_modalities)` tensor, nonzero
            where a modality is present.
        return_modality_outputs: bool. If `True`, also return the stacked
            per-modality outputs `(batch, num_modalities, output_dim)`
            (masked ones 0).

    Returns:
        `(batch, output_dim)` (or `(batch, steps, output_dim)`).

    Example:
    ```python
    fusion = mmzoo.layers.LateFusion(output_dim=10, hidden_dim=32)
    inputs = {"audio": np.ones((2, 24)), "image": np.ones((2, 64))}
    fused, per_modality = fusion(inputs, return_modality_outputs=True)
    per_modality.shape  # (2, 2, 10): each modality's own scores.
    ```

    Reference:
        The late-fusion baseline of multimodal benchmarks, e.g.
        [Liang et al., 2021](https://arxiv.org/abs/2107.07502),
        "MultiBench", NeurIPS Datasets and Benchmarks.
    """

    def __init__(
        self,
        output_dim,
        hidden_dim=None,
        activation="relu",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
        self.output_dim = int(output_dim)
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_modalities(self, feature_dims):
        self.check_aligned_steps()
        # The first layer of each head is `{name}_projection`.
        self.build_projections(
            feature_dims,
            self.hidden_dim or self.output_dim,
            activation=self.activation if self.hidden_dim else None,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
        )
        self.heads = {}
        if self.hidden_dim is None:
            return
        for name in self.modalities:
            layer = keras.layers.Dense(
                self.output_dim,
                use_bias=self.use_bias,
                kernel_initializer=self.clone_initializer(
                    self.kernel_initializer
                ),
                dtype=self.dtype_policy,
                name=f"{name}_head",
            )
            layer.build((None, self.hidden_dim))
            self.heads[name] = layer

    def call(
        self,
        inputs,
        modality_mask=None,
        return_modality_outputs=False,
        training=None,
    ):
        features, mask = self.standardize(inputs, modality_mask)
        fused, outputs = self.fuse(features, mask, training=training)
        if return_modality_outputs:
            return fused, outputs
        return fused

    def fuse(self, features, mask, training=None):
        hidden = self.project(features, mask)
        rank = len(hidden[0].shape)
        outputs = []
        for index, (name, h) in enumerate(zip(self.modalities, hidden)):
            if name in self.heads:
                h = self.heads[name](h)
                column = self.mask_column(mask, index, rank)
                h = ops.where(column, h, ops.zeros_like(h))
            outputs.append(h)
        fused = self.mean_over_present(outputs, mask)
        return fused, ops.stack(outputs, axis=-2)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "hidden_dim": self.hidden_dim,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
