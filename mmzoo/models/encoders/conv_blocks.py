import keras
from keras import ops


def _edge(x, axis, size):
    """`size` slices of `-inf` along `axis` of `x`, or `None`."""
    if not size:
        return None
    shape = list(x.shape)
    shape[axis] = size
    return ops.full(shape, float("-inf"), dtype=x.dtype)


@keras.saving.register_keras_serializable(package="mmzoo")
class MaxPooling2D(keras.layers.MaxPooling2D):
    """`keras.layers.MaxPooling2D` that `torch.compile` can differentiate.

    The same results. With `"same"` padding that is uneven (an odd size
    pooled by 2), Keras' PyTorch backend pads by repeating the edge
    (`replication_pad2d`), whose backward pass torch.compile (2.13, CPU)
    mistakes the memory layout of on the encoders' channels-last planes
    (an `assert_size_stride` error in `replication_pad2d_backward`). There
    the padding is `-inf` instead: a maximum never picks it, so the values
    and gradients are the same. Other backends and even padding use
    Keras' own.

    Example:
    ```python
    layer = MaxPooling2D(2, padding="same")
    layer(np.zeros((1, 7, 7, 3), "float32")).shape  # (1, 4, 4, 3)
    ```
    """

    def call(self, inputs):
        if keras.config.backend() != "torch" or self.padding != "same":
            return super().call(inputs)
        channels_last = self.data_format == "channels_last"
        spatial = inputs.shape[1:-1] if channels_last else inputs.shape[2:]
        pads = []
        for size, pool, stride in zip(
            spatial, self.pool_size, self.strides
        ):
            total = max((-(-size // stride) - 1) * stride + pool - size, 0)
            pads.append((total // 2, total - total // 2))
        if all(before == after for before, after in pads):
            return super().call(inputs)
        # `-inf` edges concatenated (`ops.pad` would make a new Keras
        # operation, and name, at every call: torch.compile breaks its graph
        # on that).
        first = 1 if channels_last else 2
        padded = inputs
        for axis, (before, after) in enumerate(pads, start=first):
            parts = [_edge(padded, axis, before), padded]
            parts.append(_edge(padded, axis, after))
            padded = ops.concatenate([p for p in parts if p is not None], axis)
        return ops.max_pool(
            padded,
            self.pool_size,
            self.strides,
            padding="valid",
            data_format=self.data_format,
        )


def conv_blocks(filters, dtype, name, data_format="channels_last"):
    """The seed CNN's blocks: `[Conv2D 3×3 + ReLU, MaxPool 2×2]` per filter.

    Pools use `"same"` padding, so any input size of at least one pixel
    gives a feature map (sizes halve, rounding up). `data_format` is always
    explicit, so Keras' global `image_data_format` never reinterprets the
    axes behind a caller's back.
    """
    blocks = []
    for i, width in enumerate(filters):
        blocks.append(
            keras.layers.Conv2D(
                width,
                3,
                padding="same",
                activation="relu",
                data_format=data_format,
                dtype=dtype,
                name=f"{name}_conv_{i}",
            )
        )
        blocks.append(
            MaxPooling2D(
                2,
                padding="same",
                data_format=data_format,
                dtype=dtype,
                name=f"{name}_pool_{i}",
            )
        )
    return blocks
