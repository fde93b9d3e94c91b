import keras


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
            keras.layers.MaxPooling2D(
                2,
                padding="same",
                data_format=data_format,
                dtype=dtype,
                name=f"{name}_pool_{i}",
            )
        )
    return blocks
