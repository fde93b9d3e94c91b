import keras
from keras import ops

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.fusion.modality_fusion import ModalityFusion


@mmzoo_export("mmzoo.layers.TensorFusion")
class TensorFusion(ModalityFusion):
    """Tensor Fusion: the outer product of the modalities, each extended by 1.

    Each modality vector `h_m` (optionally first projected,
    `h_m = activation(W_m · x_m + b_m)`) is extended by a constant 1, and the
    fused tensor is the outer product of all of them, flattened:

        z = flatten([1; h_1] ⊗ [1; h_2] ⊗ ... ⊗ [1; h_M]),

    of width `Π_m (dim_m + 1)`. Because of the 1s, `z` holds every unimodal
    feature, every product of two modalities' features, ..., up to the
    M-modal products. With `output_dim`, a dense layer follows,
    `activation(W · z + b)` (the paper's first post-fusion layer); its
    kernel is what makes Tensor Fusion's cost grow as the product of the
    widths (see `LowRankFusion` for the linear alternative).

    A masked modality's `h_m` is 0: its `[1; h_m]` is `[1; 0, ..., 0]`, so
    every product involving its features vanishes and only the appended 1
    remains: the output is the tensor of the other modalities.

    Inputs are vectors `(batch, dim_m)` or time-aligned sequences
    `(batch, steps, dim_m)` (one tensor per step).

    Args:
        output_dim: optional int. If set, a dense layer maps the flattened
            tensor to `output_dim` features.
        projection_dim: optional int. If set, each modality is first
            projected to `projection_dim` features (keeps the tensor small).
        activation: activation of the projections and the output layer.
        use_bias: bool. Whether the dense layers have biases.
        kernel_initializer: initializer for the dense kernels.
        modalities: optional list of names fixing the mask column order and
            the order of the outer product. Defaults to the sorted keys of
            the first input.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: dict `{modality_name: tensor}`. Leaving a key out masks that
            modality for the whole batch.
        modality_mask: optional `(batch, num_modalities)` tensor, nonzero
            where a modality is present.

    Returns:
        `(batch, output_dim)`, or without `output_dim`
        `(batch, Π_m (dim_m + 1))` (with a `steps` axis for sequences).

    Example:
    ```python
    fusion = mmzoo.layers.TensorFusion(projection_dim=4, output_dim=16)
    inputs = {"audio": np.ones((2, 24)), "image": np.ones((2, 64))}
    fusion(inputs).shape  # (2, 16): a dense layer on the 5 × 5 tensor.
    mmzoo.layers.TensorFusion()(inputs).shape  # (2, 1625) = 25 × 65
    ```

    Reference:
        [Zadeh et al., 2017](https://arxiv.org/abs/1707.07250), "Tensor
        Fusion Network for Multimodal Sentiment Analysis", EMNLP.
    """

    def __init__(
        self,
        output_dim=None,
        projection_dim=None,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
        self.output_dim = None if output_dim is None else int(output_dim)
        self.projection_dim = (
            None if projection_dim is None else int(projection_dim)
        )
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_modalities(self, feature_dims):
        self.check_aligned_steps()
        if self.projection_dim is not None:
            self.build_projections(
                feature_dims,
                self.projection_dim,
                activation=self.activation,
                use_bias=self.use_bias,
                kernel_initializer=self.kernel_initializer,
            )
            widths = [self.projection_dim] * len(self.modalities)
        else:
            widths = [feature_dims[m] for m in self.modalities]
        self.tensor_dim = 1
        for width in widths:
            self.tensor_dim *= width + 1
        self.output_dense = None
        if self.output_dim is not None:
            self.output_dense = keras.layers.Dense(
                self.output_dim,
                activation=self.activation,
                use_bias=self.use_bias,
                kernel_initializer=self.clone_initializer(
                    self.kernel_initializer
                ),
                dtype=self.dtype_policy,
                name="output_dense",
            )
            self.output_dense.build((None, self.tensor_dim))

    def fuse(self, features, mask, training=None):
        if self.projection_dim is not None:
            hidden = self.project(features, mask)
        else:
            hidden = self.masked_features(features, mask)
        # [1; h_m], and 0 for a masked or absent modality's h_m.
        ones = ops.ones_like(hidden[0][..., :1])
        tensor = None
        for h in hidden:
            extended = ops.concatenate([ones, h], axis=-1)
            if tensor is None:
                tensor = extended
                continue
            # (..., a) ⊗ (..., b) -> (..., a * b), row-major.
            outer = ops.expand_dims(tensor, -1) * ops.expand_dims(extended, -2)
            width = tensor.shape[-1] * extended.shape[-1]
            tensor = ops.reshape(outer, ops.shape(outer)[:-2] + (width,))
        if self.output_dense is not None:
            return self.output_dense(tensor)
        return tensor

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "projection_dim": self.projection_dim,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
