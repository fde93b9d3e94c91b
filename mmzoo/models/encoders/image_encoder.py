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
    is projected to `hidden_dim` (the sequence output). The seed flattened a
    hard-coded `128*8*8` map into its dense layer, which broke on any other
    input size. Here the pooled vector is either
    - `"flatten"`: the projected positions flattened and projected again
      to `hidden_dim`, the seed's design with the size computed from
      `image_shape` (keeps where features are, which matters for digits and
      clothes), or
    - `"average"`: the mean of the per-position projections, for any
      height and width.

    Args:
        image_shape: tuple `(height, width, channels)`, or `(channels,
            height, width)` when `data_format="channels_first"`; height and
            width may be `None`.
        filters: tuple of ints, the width of each conv block.
        hidden_dim: int. Width of the outputs.
        dropout: float. Dropout before the projections.
        pooling: `"flatten"`, `"average"` or `None` (the default): flatten
            when `image_shape` fixes height and width, else average.
        data_format: `"channels_last"`, `"channels_first"` or `None` (the
            default): Keras' `image_data_format()` at construction, as
            keras-hub's vision backbones. The value is stored in the config,
            so a saved encoder keeps its layout whatever the global setting
            is when it is loaded; a config saved without it (before this
            argument existed) is channels last. Both layouts give the same
            outputs with the same weights.
        dtype: string or `keras.mixed_precision.DTypePolicy`.

    Inputs:
        A float tensor `(batch, height, width, channels)` (or `(batch,
        channels, height, width)` with `data_format="channels_first"`),
        typically scaled to `[0, 1]` by the preprocessor's `ImageConverter`.

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
        pooling=None,
        data_format=None,
        dtype=None,
        **kwargs,
    ):
        if data_format is None:
            data_format = keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                "`data_format` must be 'channels_last', 'channels_first' or "
                f"None. Received: data_format={data_format!r}"
            )
        channels_first = data_format == "channels_first"
        image_shape = tuple(image_shape)
        if len(image_shape) != 3:
            raise ValueError(
                "`image_shape` must have 3 entries, (height, width, channels) "
                "or (channels, height, width) with channels first. Received: "
                f"image_shape={image_shape}"
            )
        if channels_first:
            channels, height, width = image_shape
        else:
            height, width, channels = image_shape
        static_size = height is not None and width is not None
        if pooling is None:
            pooling = "flatten" if static_size else "average"
        if pooling not in ("flatten", "average"):
            raise ValueError(
                "`pooling` must be 'flatten', 'average' or None. "
                f"Received: pooling={pooling!r}"
            )
        if pooling == "flatten" and not static_size:
            raise ValueError(
                "`pooling='flatten'` needs a fixed height and width in "
                f"`image_shape`. Received: image_shape={image_shape}"
            )
        if channels is None:
            raise ValueError(
                "`image_shape` must have a known channel count. Received: "
                f"image_shape={image_shape} with data_format={data_format!r}"
            )
        filters = tuple(int(f) for f in filters)
        # === Layers ===
        self.blocks = conv_blocks(
            filters, dtype, name="block", data_format=data_format
        )
        # Positions are read from a channels-last map in both layouts, so
        # the sequence (and the flatten pooler's weights) do not depend on
        # the layout.
        self.to_channels_last = None
        if channels_first:
            self.to_channels_last = keras.layers.Permute(
                (2, 3, 1), dtype=dtype, name="to_channels_last"
            )
        self.flatten_positions = keras.layers.Reshape(
            (-1, filters[-1]), dtype=dtype, name="flatten_positions"
        )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=dtype, name="dropout"
        )
        self.projection = keras.layers.Dense(
            hidden_dim, dtype=dtype, name="projection"
        )
        if pooling == "flatten":
            self.pooler = keras.Sequential(
                [
                    # Positions then features, whatever the global
                    # `image_data_format` (Flatten would transpose).
                    keras.layers.Flatten(
                        data_format="channels_last",
                        dtype=dtype,
                        name="pooler_flatten",
                    ),
                    keras.layers.Dense(
                        hidden_dim, dtype=dtype, name="pooler_dense"
                    ),
                ],
                name="pooler",
            )
            # `keras.Sequential` takes no `dtype`; without this it would run
            # under the global policy, not the encoder's.
            if dtype is not None:
                self.pooler.dtype_policy = dtype
        else:
            self.pooler = MaskedAveragePooling(dtype=dtype, name="pooler")

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        x = images
        for layer in self.blocks:
            x = layer(x)
        if self.to_channels_last is not None:
            x = self.to_channels_last(x)
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
        self.pooling = pooling
        self.data_format = data_format

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "filters": self.filters,
                "hidden_dim": self.hidden_dim,
                "dropout": self.dropout,
                "pooling": self.pooling,
                "data_format": self.data_format,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # Configs saved before `data_format` existed (the shipped presets)
        # describe channels-last images.
        config = dict(config)
        config.setdefault("data_format", "channels_last")
        return super().from_config(config)
