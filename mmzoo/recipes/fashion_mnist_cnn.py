"""The `fashion_mnist_cnn` preset: the seed's CNN on Fashion-MNIST.

`python -m mmzoo.recipes.fashion_mnist_cnn --output DIR`

The seed's image experiment ran this CNN on CIFAR-10; offline, Fashion-MNIST
(Debian `dataset-fashion-mnist`, `mmzoo.datasets.load_fashion_mnist`) stands
in for it. `ImageEncoder` (3x3 conv + ReLU + 2x2 max-pool, filters 32/64/128,
a 128-wide projection) in an image-only `MultimodalClassifier`, trained with
Adam on the 60,000 training images with random horizontal flips and shifts;
the last 5,000 training images are held out to pick the epoch (the best
validation epoch's weights are kept). The 10,000 test images are scored
once, at the end.
"""

import argparse
import json
import os
import shutil
import time

import keras
import keras_hub
import numpy as np

import mmzoo
from mmzoo.datasets import load_fashion_mnist
from mmzoo.presets import update_metadata
from mmzoo.recipes import keep_best_epoch

NAME = "fashion_mnist_cnn"
NUM_VALIDATION = 5000


def build_classifier(dropout=0.3):
    backbone = mmzoo.models.MultimodalBackbone(
        encoders={
            "image": mmzoo.models.ImageEncoder(
                image_shape=(28, 28, 1),
                filters=(32, 64, 128),
                hidden_dim=128,
                dropout=dropout,
            )
        },
        fusion=mmzoo.layers.ProjectionFusion(output_dim=128),
    )
    preprocessor = mmzoo.models.MultimodalPreprocessor(
        image_converter=keras_hub.layers.ImageConverter(
            image_size=(28, 28), scale=1 / 255.0
        ),
        modalities=["image"],
    )
    return mmzoo.models.MultimodalClassifier(
        backbone=backbone,
        preprocessor=preprocessor,
        num_classes=10,
        dropout=dropout,
    )


def training_splits():
    """`((x_train, y_train), (x_val, y_val))`: the official training images
    but the last `NUM_VALIDATION`, and those last ones (to pick the
    epoch)."""
    images, labels = load_fashion_mnist("train")
    return (
        (images[:-NUM_VALIDATION], labels[:-NUM_VALIDATION]),
        (images[-NUM_VALIDATION:], labels[-NUM_VALIDATION:]),
    )


def augment(images, rng, max_shift=2):
    """Random horizontal flips and shifts of up to `max_shift` pixels."""
    out = images.copy()
    flip = rng.random(len(out)) < 0.5
    out[flip] = out[flip, :, ::-1]
    padded = np.pad(out, ((0, 0), (max_shift,) * 2, (max_shift,) * 2, (0, 0)))
    dy, dx = rng.integers(0, 2 * max_shift + 1, (2, len(out)))
    for i in range(len(out)):
        out[i] = padded[i, dy[i] : dy[i] + 28, dx[i] : dx[i] + 28]
    return out


def evaluate(classifier, images, labels):
    logits = classifier.predict({"image": images}, batch_size=500, verbose=0)
    return float(np.mean(logits.argmax(-1) == labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.time()
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    (x_train, y_train), (x_val, y_val) = training_splits()
    classifier = build_classifier()
    history, best_epoch = keep_best_epoch(
        classifier,
        args.epochs,
        lambda: classifier.fit(
            {"image": augment(x_train, rng)},
            y_train,
            batch_size=128,
            epochs=1,
            verbose=2,
        ),
        lambda: evaluate(classifier, x_val, y_val),
    )
    x_test, y_test = load_fashion_mnist("test")
    test_accuracy = evaluate(classifier, x_test, y_test)
    minutes = round((time.time() - start) / 60, 1)
    summary = {
        "validation_accuracy_per_epoch": history,
        "best_epoch": best_epoch,
        "test_accuracy": {"fashion_mnist_test": round(test_accuracy, 4)},
        "minutes": minutes,
    }
    print(json.dumps(summary, indent=1))
    if args.output:
        shutil.rmtree(args.output, ignore_errors=True)
        classifier.save_to_preset(args.output)
        update_metadata(
            args.output,
            description=(
                "The seed's CNN (ImageEncoder, filters 32/64/128) trained on "
                "Fashion-MNIST, the offline stand-in for the seed's CIFAR-10 "
                "experiment."
            ),
            recipe=(
                f"python -m mmzoo.recipes.{NAME} --epochs {args.epochs} "
                f"--seed {args.seed}"
            ),
            backend=keras.config.backend(),
            data={
                "source": "Fashion-MNIST (Zalando), Debian "
                "dataset-fashion-mnist 0.0~git20200523.55506a9-1",
                "train": f"first {len(x_train)} official training images",
                "validation": f"last {NUM_VALIDATION} training images",
                "test": "the official 10,000 test images",
            },
            licence={
                "weights": "Apache-2.0",
                "fashion_mnist": "MIT (Zalando Research)",
            },
            inputs={"image": "28x28x1 uint8, scaled to [0, 1]"},
            seed=args.seed,
            epochs=args.epochs,
            **summary,
        )
        print(f"saved {args.output}: {sorted(os.listdir(args.output))}")
    return classifier, summary


if __name__ == "__main__":
    main()
