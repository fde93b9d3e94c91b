import keras
import numpy as np
from keras_hub.src.models.efficientnet.efficientnet_image_converter import (
    EfficientNetImageConverter,
)
from keras_hub.src.utils.tensor_utils import in_tf_function

from mmzoo.api_export import mmzoo_export
from mmzoo.models.efficientnet_lite.efficientnet_lite_backbone import (
    EfficientNetLiteBackbone,
)
from mmzoo.utils.tracing import concrete_numpy


@mmzoo_export("mmzoo.layers.EfficientNetLiteImageConverter")
class EfficientNetLiteImageConverter(EfficientNetImageConverter):
    """Images of any size and colour to EfficientNet-Lite's inputs.

    keras-hub's `ImageConverter` (centre crop to the target's aspect ratio,
    resize, `pixel * scale + offset`), after turning the channels into RGB:
    grey images (1 channel) are repeated into three, RGBA images (4) lose
    their alpha channel (as `PIL.Image.convert("RGB")`); any other channel
    count is an error. Pixels are read as 8-bit values in [0, 255] (uint8,
    or floats on that scale); the defaults map them to `(pixel - 127) /
    128`, the normalisation of Google's EfficientNet-Lite checkpoints.

    When the values are known (eager calls, not inside a traced
    `tf.data` map or a compiled function), an empty batch, NaN or infinite
    pixels, values outside [0, 255] and float images all within [0, 1]
    (already scaled: multiply them by 255) raise a `ValueError`.

    Args:
        image_size: `(height, width)` of the outputs. Defaults to
            `(224, 224)`, EfficientNet-Lite0's training size; the backbone
            takes any size.
        scale, offset: the affine map of the pixels, as keras-hub's.
        antialias: whether downsampling filters first. Defaults to `True`
            (photographs are usually larger than the model's input).
        **kwargs: other `keras_hub.layers.ImageConverter` arguments.

    Example:
    ```python
    converter = mmzoo.layers.EfficientNetLiteImageConverter()
    grey = np.zeros((2, 28, 28, 1), "uint8")  # Fashion-MNIST
    converter(grey).shape  # (2, 224, 224, 3)
    ```
    """

    backbone_cls = EfficientNetLiteBackbone

    def __init__(
        self,
        image_size=(224, 224),
        scale=1 / 128,
        offset=-127 / 128,
        antialias=True,
        **kwargs,
    ):
        super().__init__(
            image_size=image_size,
            scale=scale,
            offset=offset,
            antialias=antialias,
            **kwargs,
        )

    def _call_python(self, inputs):
        if isinstance(inputs, (list, tuple)):
            inputs = np.asarray(inputs)
        if not isinstance(inputs, dict):
            values = concrete_numpy(inputs)
            self.check_images(inputs if values is None else values)
            inputs = self._to_rgb(inputs)
        return super()._call_python(inputs)

    def _to_rgb(self, images):
        channels = images.shape[-1]
        if channels == 4:
            return images[..., :3]
        if channels != 1:
            return images
        if in_tf_function():  # a tf.data map, on any backend
            import tensorflow as tf

            return tf.concat([images] * 3, axis=-1)
        return keras.ops.concatenate([images] * 3, axis=-1)

    def check_images(self, images):
        """Raise a `ValueError` for images this converter cannot read.

        Checks the shape (rank, channels) always, and, for numpy arrays,
        the values: an empty batch, NaN or infinite pixels, values outside
        [0, 255], float images all within [0, 1]. Tasks call it on their
        inputs before building a `tf.data` pipeline, where values are not
        known.
        """
        shape = tuple(images.shape)
        if len(shape) not in (3, 4):
            raise ValueError(
                "EfficientNetLiteImageConverter expects an image (height, "
                "width, channels) or a batch (batch, height, width, "
                f"channels). Received shape {shape}."
            )
        channels = shape[-1]
        if channels not in (1, 3, 4):
            raise ValueError(
                "EfficientNetLiteImageConverter expects channels-last "
                "images with 1 (grey), 3 (RGB) or 4 (RGBA) channels. "
                f"Received shape {shape} ({channels} channels)."
                + (
                    " It looks channels-first: transpose it to (batch, "
                    "height, width, channels)."
                    if len(shape) == 4 and shape[1] in (1, 3, 4)
                    else ""
                )
            )
        if len(shape) == 4 and shape[0] == 0:
            raise ValueError(
                "EfficientNetLiteImageConverter got an empty batch (shape "
                f"{shape}); expected at least one image."
            )
        if not isinstance(images, np.ndarray) or images.size == 0:
            return
        if images.dtype.kind not in "biuf":
            raise ValueError(
                "EfficientNetLiteImageConverter expects uint8 or float "
                f"pixels. Received dtype {images.dtype}."
            )
        if images.dtype.kind == "f" and not np.all(np.isfinite(images)):
            raise ValueError(
                "EfficientNetLiteImageConverter got NaN or infinite pixels."
            )
        low, high = float(images.min()), float(images.max())
        if low < 0 or high > 255:
            raise ValueError(
                "EfficientNetLiteImageConverter reads pixels as 8-bit values "
                f"in [0, 255]; received values in [{low:.4g}, {high:.4g}]."
            )
        if images.dtype.kind == "f" and 0 < high <= 1:
            raise ValueError(
                "EfficientNetLiteImageConverter reads pixels in [0, 255]; "
                f"these float images are all within [0, 1] (max "
                f"{high:.4g}): multiply them by 255 first."
            )
