"""EfficientNet-Lite0's encoder against its PyTorch reference, images/s.

`for b in jax torch tensorflow; do
KERAS_BACKEND=$b python benchmarks/efficientnet_lite.py; done`

Loads `EfficientNetLiteBackbone.from_preset("efficientnet_lite0_imagenet")`
and `efficientnet-lite-pytorch`'s model from the same package weights
(`extract_features`: the same layers, up to the 1280-channel feature map),
warms both up (tracing and compilation are not timed), then times mmzoo's
`predict_on_batch` and the reference's forward pass (`torch.no_grad`,
float32, PyTorch's default threads: one per core) on the same normalised
images, alternately, medians of `--repeats`. Prints a Markdown row per
(image size, batch): images per second for both and their ratio (mmzoo's
rate over the reference's: at least 1 means mmzoo is as fast or faster).
"""

import argparse
import os
import platform

import keras
import numpy as np

import mmzoo
from mmzoo.models.efficientnet_lite import efficientnet_lite_package
from timing import interleaved_medians

SHAPES = ((224, 32), (64, 128))
PRESET = "efficientnet_lite0_imagenet"


def reference_model():
    from efficientnet_lite_pytorch import EfficientNet

    path = str(efficientnet_lite_package.state_dict_path(PRESET))
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=path
    )
    return model.eval()


def time_shape(backbone, reference, size, batch, repeats):
    import torch

    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, size, size, 3)).astype("float32")
    torch_images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())

    def ours():
        keras.ops.convert_to_numpy(backbone.predict_on_batch(images))

    def theirs():
        with torch.no_grad():
            reference.extract_features(torch_images)

    times = interleaved_medians((ours, theirs), repeats)
    return tuple(batch / t for t in times)


def main(argv=None):
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    backbone = mmzoo.models.EfficientNetLiteBackbone.from_preset(PRESET)
    reference = reference_model()
    print(
        f"# {keras.backend.backend()}, keras {keras.__version__}, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), "
        f"{os.cpu_count()} CPU cores, {platform.processor() or 'cpu'}"
    )
    print("| backend | size | batch | mmzoo img/s | reference img/s | ratio |")
    print("|---|---|---|---|---|---|")
    for size, batch in SHAPES:
        ours, theirs = time_shape(
            backbone, reference, size, batch, args.repeats
        )
        print(
            f"| {keras.backend.backend()} | {size} | {batch} | {ours:.0f} | "
            f"{theirs:.0f} | {ours / theirs:.2f} |"
        )


if __name__ == "__main__":
    main()
