import keras
from keras import ops

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.fusion.modality_fusion import ModalityFusion
from mmzoo.layers.fusion.modality_fusion import masked_softmax


@mmzoo_export("mmzoo.layers.GatedMultimodalUnit")
class GatedMultimodalUnit(ModalityFusion):
    """Gated Multimodal Unit: modalities mixed by learned, per-feature gates.

    Each modality gets its own representation `h_m = tanh(W_m · x_m + b_m)`,
    and gates computed from all modalities at once decide, feature by
    feature, how much of each enters the output:

        z = softmax_m(W_z · [x_1; ...; x_M] + b_z),    h = Σ_m z_m ⊙ h_m.

    With two modalities the softmax over two logits is a sigmoid of their
    difference, `z_1 = σ(a_1 - a_2)`, `z_2 = 1 - z_1`: the paper's bimodal
    unit `h = z ⊙ h_v + (1 - z) ⊙ h_t`. With more modalities this is the
    normalised form of its multi-input extension.

    A masked modality is 0 in the gates' input and gets a gate of exactly
    0, so it contributes exactly nothing; the remaining gates renormalise
    (a lone modality gets 1, `h = h_m`); a row with nothing present is 0.

    Args:
        output_dim: int. Width of `h_m` and of the fused output.
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
        return_gates: bool. If `True`, also return the gates `z`.

    Returns:
        `(batch, output_dim)` (or `(batch, steps, output_dim)`); with
        `return_gates=True` a tuple `(fused, gates)`, `gates` of shape
        `(batch, num_modalities, output_dim)` (or with `steps` after
        `batch`), in `self.modalities` order.

    Example:
    ```python
    fusion = mmzoo.layers.GatedMultimodalUnit(output_dim=16)
    inputs = {"audio": np.ones((2, 24)), "image": np.ones((2, 64))}
    fused, gates = fusion(inputs, return_gates=True)
    gates.shape  # (2, 2, 16): how much of each modality, per feature.
    ```

    Reference:
        [Arevalo et al., 2017](https://arxiv.org/abs/1702.01992), "Gated
        Multimodal Units for Information Fusion", ICLR workshop.
    """

    def __init__(
        self,
        output_dim,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
        self.output_dim = int(output_dim)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_modalities(self, feature_dims):
        self.check_aligned_steps()
        self.build_projections(
            feature_dims,
            self.output_dim,
            activation="tanh",
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
        )
        self.gate_dense = keras.layers.Dense(
            len(self.modalities) * self.output_dim,
            use_bias=self.use_bias,
            kernel_initializer=self.clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="gate_dense",
        )
        total = sum(feature_dims[m] for m in self.modalities)
        self.gate_dense.build((None, total))

    def call(
        self, inputs, modality_mask=None, return_gates=False, training=None
    ):
        features, mask = self.standardize(inputs, modality_mask)
        fused, gates = self.fuse(features, mask, training=training)
        if return_gates:
            return fused, gates
        return fused

    def fuse(self, features, mask, training=None):
        hidden = self.project(features, mask)
        inputs = self.masked_features(features, mask)
        logits = self.gate_dense(ops.concatenate(inputs, axis=-1))
        num_modalities = len(self.modalities)
        # (..., M, output_dim)
        logits = ops.reshape(
            logits,
            ops.shape(logits)[:-1] + (num_modalities, self.output_dim),
        )
        logits = ops.cast(logits, "float32")
        rank = len(inputs[0].shape)
        present = ops.cast(mask, "bool")
        if rank == 3:
            present = ops.expand_dims(present, 1)
        present = ops.expand_dims(present, -1)
        # Masked modalities get exactly 0, a lone one 1, an empty row 0.
        gates = masked_softmax(logits, present, axis=-2)
        gates = ops.cast(gates, self.compute_dtype)
        stacked = ops.stack(hidden, axis=-2)
        return ops.sum(gates * stacked, axis=-2), gates

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
