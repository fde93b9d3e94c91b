import keras
from keras import ops

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.fusion.modality_fusion import ModalityFusion

COMBINE_MODES = ("concat", "sum", "mean")


@mmzoo_export("mmzoo.layers.ProjectionFusion")
class ProjectionFusion(ModalityFusion):
    """Projects every modality into one space and combines them.

    Each modality `m` is projected with its own affine map,
    `h_m = activation(W_m · x_m + b_m)`, to `output_dim`, then the projected
    modalities are combined:

    - `"concat"`: `h = [mask_1 · h_1, ..., mask_M · h_M]`, width
      `M * output_dim`; a masked modality's slot is all zeros.
    - `"sum"`: `h = Σ_m mask_m · h_m`.
    - `"mean"`: `h = Σ_m mask_m · h_m / max(Σ_m mask_m, 1)`, i.e. divided by
      the number of modalities present in the row.

    Inputs are vectors `(batch, dim_m)` or sequences `(batch, steps, dim_m)`
    sharing one `steps` (time-aligned features); widths may differ.

    Args:
        output_dim: int. Width of every projected modality.
        combine: one of `"concat"`, `"sum"`, `"mean"`.
        activation: activation applied to each projection. Defaults to none.
        use_bias: bool. Whether projections have a bias `b_m`.
        kernel_initializer: initializer for `W_m`.
        bias_initializer: initializer for `b_m`.
        modalities: optional list of names fixing the mask column order.
            Defaults to the sorted keys of the first input.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: dict `{modality_name: tensor}`. Leaving a key out masks that
            modality for the whole batch.
        modality_mask: optional `(batch, num_modalities)` tensor, nonzero
            where a modality is present.

    Returns:
        `(batch, output_dim)` (or `(batch, steps, output_dim)` for
        sequences); `M * output_dim` wide for `"concat"`.

    Example:
    ```python
    fusion = mmzoo.layers.ProjectionFusion(output_dim=16, combine="mean")
    inputs = {"text": np.ones((2, 32)), "image": np.ones((2, 64))}
    fusion(inputs).shape  # (2, 16)
    # Row 1 has no image: the mean is over the text projection alone.
    fusion(inputs, modality_mask=np.array([[1, 1], [0, 1]]))
    ```
    """

    def __init__(
        self,
        output_dim,
        combine="concat",
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
        if combine not in COMBINE_MODES:
            raise ValueError(
                f"`combine` must be one of {COMBINE_MODES}. "
                f"Received: combine={combine!r}"
            )
        self.output_dim = int(output_dim)
        self.combine = combine
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build_modalities(self, feature_dims):
        self.build_projections(
            feature_dims,
            self.output_dim,
            activation=self.activation,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
        )

    def fuse(self, features, mask, training=None):
        projected = self.project(features, mask)
        if self.combine == "concat":
            return ops.concatenate(projected, axis=-1)
        if self.combine == "sum":
            total = projected[0]
            for h in projected[1:]:
                total = total + h
            return total
        return self.mean_over_present(projected, mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "combine": self.combine,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
