import keras
from keras import ops

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.fusion.modality_fusion import ModalityFusion


@mmzoo_export("mmzoo.layers.LowRankFusion")
class LowRankFusion(ModalityFusion):
    """Low-rank Multimodal Fusion: Tensor Fusion with rank-r weights.

    Tensor Fusion maps `Z = ⊗_m [1; h_m]` to the output with a weight tensor
    `W` of size `Π_m (dim_m + 1) × output_dim`. Low-rank fusion writes `W`
    as a sum of `rank` products of per-modality factors
    `W_m^(i)` of shape `(dim_m + 1, output_dim)` and never builds `Z`:

        h = Σ_{i=1..rank} λ_i · Π_m ([1; h_m] · W_m^(i)) + b,

    where `Π_m` is the element-wise product over modalities and `λ` are
    learned rank weights (the paper's implementation: a linear map over the
    rank instead of a plain sum). Parameters and cost grow linearly in the
    number of modalities and in their widths, where Tensor Fusion's grow as
    the product.

    A masked modality's `h_m` is 0, so its factor reduces to the row that
    multiplies the appended 1, `W_m^(i)[0]`: exactly what Tensor Fusion
    gives for a missing modality with the same (low-rank) weights.

    Inputs are vectors `(batch, dim_m)` or time-aligned sequences
    `(batch, steps, dim_m)` (fused step by step).

    Args:
        output_dim: int. Width of the fused output.
        rank: int. Number of rank-one terms `r`.
        projection_dim: optional int. If set, each modality is first
            projected, `h_m = activation(W_m · x_m + b_m)`.
        activation: activation of the projections.
        use_bias: bool. Whether the projections and the output have biases.
        kernel_initializer: initializer for the factors, the rank weights
            and the projections.
        modalities: optional list of names fixing the mask column order.
            Defaults to the sorted keys of the first input.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: dict `{modality_name: tensor}`. Leaving a key out masks that
            modality for the whole batch.
        modality_mask: optional `(batch, num_modalities)` tensor, nonzero
            where a modality is present.

    Returns:
        `(batch, output_dim)` (or `(batch, steps, output_dim)`).

    Example:
    ```python
    fusion = mmzoo.layers.LowRankFusion(output_dim=16, rank=4)
    inputs = {"audio": np.ones((2, 24)), "image": np.ones((2, 64))}
    fusion(inputs).shape  # (2, 16)
    # 4 × (25 + 65) × 16 factor weights, against 25 × 65 × 16 for the
    # dense layer on Tensor Fusion's tensor.
    ```

    Reference:
        [Liu et al., 2018](https://arxiv.org/abs/1806.00064), "Efficient
        Low-rank Multimodal Fusion with Modality-Specific Factors", ACL.
    """

    def __init__(
        self,
        output_dim,
        rank=4,
        projection_dim=None,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_normal",
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
        self.output_dim = int(output_dim)
        self.rank = int(rank)
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
        self.factors = {}
        for name in self.modalities:
            width = self.projection_dim or feature_dims[name]
            self.factors[name] = self.add_weight(
                name=f"{name}_factor",
                shape=(self.rank, width + 1, self.output_dim),
                initializer=self.clone_initializer(self.kernel_initializer),
            )
        self.rank_weights = self.add_weight(
            name="rank_weights",
            shape=(self.rank,),
            initializer=self.clone_initializer(self.kernel_initializer),
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.output_dim,), initializer="zeros"
            )

    def fuse(self, features, mask, training=None):
        if self.projection_dim is not None:
            hidden = self.project(features, mask)
        else:
            hidden = self.masked_features(features, mask)
        product = None
        for name, h in zip(self.modalities, hidden):
            factor = ops.cast(self.factors[name], self.compute_dtype)
            # [1; h] · W^(i) for every rank i at once (one product over the
            # whole factor: slicing off W^(i)[0] would copy it). A masked or
            # absent modality's h is 0: W^(i)[0] remains.
            ones = ops.ones_like(h[..., :1])
            extended = ops.concatenate([ones, h], axis=-1)
            term = ops.einsum("...d,rdo->...ro", extended, factor)
            product = term if product is None else product * term
        weights = ops.cast(self.rank_weights, self.compute_dtype)
        fused = ops.einsum("...ro,r->...o", product, weights)
        if self.bias is not None:
            fused = fused + ops.cast(self.bias, self.compute_dtype)
        return fused

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "rank": self.rank,
                "projection_dim": self.projection_dim,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
