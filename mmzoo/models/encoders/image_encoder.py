import keras
from keras_hub.models import Backbone

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.masked_average_pooling import MaskedAveragePooling
from mmzoo.models.encoders.conv_blocks import conv_blocks


@mmzoo_export("mmzoo.models.ImageEncoder")
class ImageEncoder(Backbone):
    """The seed CNN image encoder, for any image size and channel count.

    Blocks of `Conv2D(3×3) + ReLU + MaxPool(2×2)` (filters 32, 64, 128 by
    default, as in the seed), then every position of the final feature map
    is projected to `hidden_dim`. The seed flattened a fixed `128*8*8` map
    into its dense layer, which tied it to one input size; here the dense
    layer acts per position and the pooled vector is the mean over
    positions, so any height, width and channel count works.

    Args:
        image_shape: tuple `(height, width, channels)`; height and width may
            be `None`.
        filters: tuple of ints, the width of each conv block.
        hidden_dim: int. Width of the outputs.
        dropout: float. Dropout before the projection.
        dtype: string or `keras.mixed_precision.DTypePolicy`.

    Inputs:
        A float tensor `(batch, height, width, channels)`, typically scaled
        to `[0, 1]` by the preprocessor's `ImageConverter`.

    Outputs:
        A dict with `"sequence_output"` `(batch, positions, hidden_dim)` and
        `"pooled_output"` `(batch, hidden_dim)`.

    Example:
    ```python
    encoder = mmzoo.models.ImageEncoder(image_shape=(28, 28, 1))
    encoder(np.zeros((2, 28, 28, 1)))["pooled_output"].shape  # (2, 128)
    ```
    """

    def __init__(
        self,
        image_shape=(None, None, 3),
        filters=(32, 64, 128),
        hidden_dim=128,
        dropout=0.0,
        dtype=None,
        **kwargs,
    ):
        image_shape = tuple(image_shape)
        if len(image_shape) != 3 or image_shape[-1] is None:
            raise ValueError(
                "`image_shape` must be (height, width, channels) with a known "
                f"channel count. Received: image_shape={image_shape}"
            )
        filters = tuple(int(f) for f in filters)
        # === Layers ===
        self.blocks = conv_blocks(filters, dtype, name="block")
        self.flatten_positions = keras.layers.Reshape(
            (-1, filters[-1]), dtype=dtype, name="flatten_positions"
        )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=dtype, name="dropout"
        )
        self.projection = keras.layers.Dense(
            hidden_dim, dtype=dtype, name="projection"
        )
        self.pooler = MaskedAveragePooling(dtype=dtype, name="pooler")

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        x = images
        for layer in self.blocks:
            x = layer(x)
        x = self.flatten_positions(x)
        x = self.dropout_layer(x)
        sequence = self.projection(x)
        pooled = self.pooler(sequence)
        super().__init__(
            inputs=images,
            outputs={"sequence_output": sequence, "pooled_output": pooled},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.image_shape = image_shape
        self.filters = filters
        self.hidden_dim = hidden_dim
        self.dropout = dropout

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "filters": self.filters,
                "hidden_dim": self.hidden_dim,
                "dropout": self.dropout,
            }
        )
        return config
