"""Fashion-MNIST on ImageNet features: EfficientNet-Lite0, probed and tuned.

`python -m mmzoo.recipes.fashion_mnist_efficientnet_lite0 --output DIR`

The protocol of `fashion_mnist_cnn`: the first 55,000 official training
images train, the last 5,000 pick the epoch (the best validation epoch's
weights are kept), the 10,000 test images are scored once per model at the
end. The grey 28×28 images are resized to `--image-size` (64 by default,
what a 2-core CPU fine-tunes in minutes per epoch) and repeated to RGB by
the `EfficientNetLiteImageConverter`.

1. Linear probe: the frozen ImageNet backbone's pooled features (1280) of
   every image, once, then a softmax layer trained on them (Adam).
2. Fine-tuning (`--unfreeze`): the probe's head on the backbone with
   every layer trainable (`"all"`, the default) or its last stage only
   (`"top"`: block 7 and the head convolution, 89.9 % against 92.2 %),
   trained with Adam (2e-4 by default) on randomly flipped and shifted
   images. The defaults reproduce the shipped preset.

The preset is the fine-tuned classifier; it stores only the weights that
fine-tuning changed, as float16 differences from the ImageNet package's.
"""

import argparse
import json
import os
import shutil
import time

import keras
import numpy as np

import mmzoo
from mmzoo.datasets import load_fashion_mnist
from mmzoo.presets import update_metadata
from mmzoo.recipes import keep_best_epoch
from mmzoo.recipes.fashion_mnist_cnn import NUM_VALIDATION
from mmzoo.recipes.fashion_mnist_cnn import augment
from mmzoo.recipes.fashion_mnist_cnn import training_splits
from mmzoo.utils.preset_weights import storing_residuals

NAME = "fashion_mnist_efficientnet_lite0"
PRETRAINED = "efficientnet_lite0_imagenet"
UNFROZEN = {"top": ("block7", "top_"), "all": ("",)}


def build_classifier(image_size):
    """The ImageNet backbone with a new 10-class head, taking 28×28 grey
    images resized to `image_size`."""
    converter = mmzoo.layers.EfficientNetLiteImageConverter(
        image_size=(image_size, image_size)
    )
    return mmzoo.models.EfficientNetLiteImageClassifier.from_preset(
        PRETRAINED,
        num_classes=10,
        preprocessor=mmzoo.models.EfficientNetLiteImageClassifierPreprocessor(
            converter
        ),
    )


def accuracy(classifier, images, labels):
    logits = classifier.predict(images, batch_size=250, verbose=0)
    return float(np.mean(logits.argmax(-1) == labels))


def pooled_features(classifier, images):
    """The backbone's average-pooled features, `(n, 1280)`."""
    preprocessor = classifier.preprocessor
    pooled = keras.Sequential([classifier.backbone, classifier.pooler])
    out = []
    progress = keras.utils.Progbar(len(images), unit_name="image")
    for start in range(0, len(images), 500):
        x = preprocessor(images[start : start + 500])
        out.append(keras.ops.convert_to_numpy(pooled(x, training=False)))
        progress.add(len(out[-1]))
    return np.concatenate(out)


def linear_probe(classifier, x_train, y_train, x_val, y_val, epochs, seed):
    """Train the head on frozen features; returns its history and best
    epoch (the head keeps that epoch's weights)."""
    features = pooled_features(classifier, x_train)
    val_features = pooled_features(classifier, x_val)
    keras.utils.set_random_seed(seed)
    head = keras.Sequential(
        [keras.Input((features.shape[-1],)), keras.layers.Dense(10)]
    )
    head.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    def validate():
        logits = head.predict(val_features, batch_size=1000, verbose=0)
        return float(np.mean(logits.argmax(-1) == y_val))

    history, best_epoch = keep_best_epoch(
        head,
        epochs,
        lambda: head.fit(features, y_train, batch_size=256, verbose=0),
        validate,
        label="linear probe epoch",
    )
    classifier.output_dense.set_weights(head.get_weights())
    return history, best_epoch


def fine_tune(classifier, x_train, y_train, x_val, y_val, args, rng):
    prefixes = UNFROZEN[args.unfreeze]
    for layer in classifier.backbone.layers:
        layer.trainable = layer.name.startswith(prefixes)
    classifier.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    def train_epoch():
        # keras-hub's `fit` turns arrays into a dataset without shuffling.
        order = rng.permutation(len(x_train))
        classifier.fit(
            augment(x_train[order], rng),
            y_train[order],
            batch_size=64,
            epochs=1,
            verbose=2,
        )

    return keep_best_epoch(
        classifier,
        args.epochs,
        train_epoch,
        lambda: accuracy(classifier, x_val, y_val),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=None)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--probe-epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=6)
    # The defaults are the shipped preset's.
    parser.add_argument("--unfreeze", choices=sorted(UNFROZEN), default="all")
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.time()
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    (x_train, y_train), (x_val, y_val) = training_splits()
    x_test, y_test = load_fashion_mnist("test")
    classifier = build_classifier(args.image_size)

    probe_history, probe_epoch = linear_probe(
        classifier, x_train, y_train, x_val, y_val, args.probe_epochs, args.seed
    )
    probe_test = accuracy(classifier, x_test, y_test)
    probe_minutes = round((time.time() - start) / 60, 1)
    print(f"linear probe: test {probe_test:.4f} ({probe_minutes} min)")

    history, best_epoch = fine_tune(
        classifier, x_train, y_train, x_val, y_val, args, rng
    )
    test = accuracy(classifier, x_test, y_test)
    minutes = round((time.time() - start) / 60, 1)
    summary = {
        "image_size": args.image_size,
        "linear_probe": {
            "validation_accuracy_per_epoch": probe_history,
            "best_epoch": probe_epoch,
            "test_accuracy": round(probe_test, 4),
            "minutes": probe_minutes,
        },
        "fine_tuning": {
            "unfrozen": args.unfreeze,
            "learning_rate": args.learning_rate,
            "validation_accuracy_per_epoch": history,
            "best_epoch": best_epoch,
            "minutes": round(minutes - probe_minutes, 1),
            "test_accuracy_before_saving": round(test, 4),
        },
        "test_accuracy": {"fashion_mnist_test": round(test, 4)},
        "backend": keras.config.backend(),
        "minutes": minutes,
    }
    print(json.dumps(summary, indent=1))
    if args.output:
        save_preset(classifier, args, summary, x_test, y_test)
    return classifier, summary


def save_preset(classifier, args, summary, x_test, y_test):
    """Save the fine-tuned classifier (its changed package weights as
    float16 differences), load it back and score the loaded model on the
    test images: that is the accuracy recorded."""
    shutil.rmtree(args.output, ignore_errors=True)
    for layer in classifier.backbone.layers:
        layer.trainable = True
    with storing_residuals("float16"):
        classifier.save_to_preset(args.output)
    loaded = mmzoo.load(args.output)
    test = accuracy(loaded, x_test, y_test)
    summary["test_accuracy"] = {"fashion_mnist_test": round(test, 4)}
    update_metadata(
        args.output,
        description=(
            "EfficientNet-Lite0 (ImageNet) fine-tuned on Fashion-MNIST at "
            f"{args.image_size}×{args.image_size}: a linear probe's head, "
            f"then the {args.unfreeze!r} layers tuned."
        ),
        recipe=(
            f"python -m mmzoo.recipes.{NAME} --image-size "
            f"{args.image_size} --epochs {args.epochs} --unfreeze "
            f"{args.unfreeze} --learning-rate {args.learning_rate} "
            f"--seed {args.seed}"
        ),
        data={
            "source": "Fashion-MNIST (Zalando), Debian "
            "dataset-fashion-mnist 0.0~git20200523.55506a9-1",
            "train": "first 55000 official training images",
            "validation": f"last {NUM_VALIDATION} training images",
            "test": "the official 10,000 test images",
        },
        weights={
            "pretrained": PRETRAINED,
            "stored_here": "the head, and each backbone weight fine-tuning "
            "changed as its float16 difference from the package's",
        },
        licence={
            "weights": "Apache-2.0",
            "fashion_mnist": "MIT (Zalando Research)",
        },
        inputs={
            "image": "28x28x1 uint8 (any size, grey or RGB), resized to "
            f"{args.image_size}x{args.image_size} RGB"
        },
        seed=args.seed,
        # The predicted class of the first 500 test images, for checking
        # that every backend gives the same answers.
        test_predictions="".join(
            str(int(p))
            for p in loaded.predict(x_test[:500], verbose=0).argmax(-1)
        ),
        **summary,
    )
    print(f"saved {args.output}: {sorted(os.listdir(args.output))}")
    print(f"test accuracy of the saved preset: {test:.4f}")


if __name__ == "__main__":
    main()
