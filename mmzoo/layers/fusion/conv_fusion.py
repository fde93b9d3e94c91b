import keras
from keras import ops

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.fusion.modality_fusion import ModalityFusion


@mmzoo_export("mmzoo.layers.ConvFusion")
class ConvFusion(ModalityFusion):
    """Fuses modalities with a convolution over a shared grid.

    Layout: every modality is first projected to `projection_dim` features,
    `p_m = W_m · x_m + b_m`. The projected modalities are then stacked as the
    *channels* of a 2-D grid of shape `(steps, projection_dim, M)`: rows are
    time steps (a vector input is one step), columns are projected features
    and each of the `M` channels is one modality. A `Conv2D` with
    `filters` kernels of `kernel_size` mixes neighbouring features across all
    modalities at once,

        g = activation(Conv2D(stack_m(mask_m · p_m))),

    the grid is averaged over steps, flattened and projected to
    `output_dim`: `h = W_o · flatten(mean_steps(g)) + b_o`. A masked
    modality's channel is all zeros, so it contributes nothing; the kernels
    see the same layout whichever modalities are present.

    Args:
        output_dim: int. Width of the fused output.
        projection_dim: int. Width each modality is projected to (the
            grid's feature axis). Defaults to `output_dim`.
        filters: int. Number of convolution kernels.
        kernel_size: int or pair. Size of the kernels over `(steps,
            features)`.
        activation: activation after the convolution.
        kernel_initializer: initializer for all kernels.
        modalities: optional list of names fixing the mask column order and
            the channel order. Defaults to the sorted keys of the first input.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: dict `{modality_name: tensor}` of vectors `(batch, dim_m)` or
            sequences `(batch, steps, dim_m)` sharing `steps`.
        modality_mask: optional `(batch, num_modalities)` tensor, nonzero
            where a modality is present.

    Returns:
        A `(batch, output_dim)` tensor.

    Example:
    ```python
    fusion = mmzoo.layers.ConvFusion(output_dim=16, filters=4)
    inputs = {"audio": np.ones((2, 24)), "image": np.ones((2, 64))}
    fusion(inputs).shape  # (2, 16)
    ```
    """

    def __init__(
        self,
        output_dim,
        projection_dim=None,
        filters=16,
        kernel_size=3,
        activation="relu",
        kernel_initializer="glorot_uniform",
        modalities=None,
        **kwargs,
    ):
        super().__init__(modalities=modalities, **kwargs)
        self.output_dim = int(output_dim)
        self.projection_dim = int(projection_dim or output_dim)
        self.filters = int(filters)
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_modalities(self, feature_dims):
        self.build_projections(
            feature_dims,
            self.projection_dim,
            kernel_initializer=self.kernel_initializer,
        )
        num_modalities = len(self.modalities)
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            padding="same",
            activation=self.activation,
            kernel_initializer=self.clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="conv",
        )
        self.conv.build((None, None, self.projection_dim, num_modalities))
        self.output_projection = keras.layers.Dense(
            self.output_dim,
            kernel_initializer=self.clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="output_projection",
        )
        self.output_projection.build((None, self.projection_dim * self.filters))

    def fuse(self, features, mask, training=None):
        projected = self.project(features, mask)
        if len(projected[0].shape) == 2:
            projected = [ops.expand_dims(h, 1) for h in projected]
        # (batch, steps, projection_dim, num_modalities)
        grid = ops.stack(projected, axis=-1)
        grid = self.conv(grid)
        pooled = ops.mean(grid, axis=1)
        pooled = ops.reshape(pooled, (-1, self.projection_dim * self.filters))
        return self.output_projection(pooled)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "projection_dim": self.projection_dim,
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
