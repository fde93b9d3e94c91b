"""mmzoo's main job: a pretrained multimodal preset, on real data.

`python -m mmzoo` (or the `mmzoo` command):

1. loads the best fused AV-digits preset (the one with the best validation
   accuracy recorded in its metadata; see `best_fused_preset`) with
   `MultimodalClassifier.from_preset(name)`, and the image-only and audio-only
   presets beside it;
2. loads the AV-digits test split: degraded MNIST digits paired with
   degraded spoken digits in six languages, by voices never heard in
   training (built with `espeak-ng` and cached the first time, ~10 s);
3. evaluates the fused preset with both modalities, with the audio removed
   and with the image removed, and the unimodal presets, and prints the
   table next to the accuracies recorded in each preset's metadata;
4. classifies one test example from its raw inputs: a `uint8` image and a
   waveform.

`python -m mmzoo --image digit.png --audio digit.wav` (either or both)
classifies your own files with the preset instead, and skips the table.
"""

import argparse
import time
import wave

import keras

import mmzoo
from mmzoo.datasets import av_digits
from mmzoo.datasets import load_av_digits
from mmzoo.recipes.av_digits import SUBSETS
from mmzoo.recipes.av_digits import evaluate_subsets

FUSED_PRESETS = (
    "av_digits_projection",
    "av_digits_conv",
    "av_digits_attention",
)
UNIMODAL_PRESETS = ("av_digits_image", "av_digits_audio")


def best_fused_preset():
    """The fused AV-digits preset that did best on the validation split.

    Chosen as each preset's epoch was: by the mean validation accuracy over
    the three modality subsets (both, image only, audio only), at its chosen
    epoch, from its metadata. The test split is never used to choose.
    """
    presets = mmzoo.list_presets(metadata=True)
    scores = {}
    for name in FUSED_PRESETS:
        if name not in presets:
            continue
        metadata = presets[name]
        epoch = metadata["validation_accuracy_per_epoch"][
            metadata["best_epoch"] - 1
        ]
        scores[name] = sum(epoch.values()) / len(epoch)
    if not scores:
        raise RuntimeError(
            f"None of the presets {FUSED_PRESETS} is installed with mmzoo."
        )
    return max(scores, key=scores.get)


def split_hash_report(info, metadata):
    """One line comparing the test split's content hash with the one a
    preset's metadata records.

    A preset is judged by its accuracies and predictions; a differing hash
    is reported beside them, not a failure: the accuracies say whether the
    difference matters.

    Example:
    ```python
    split_hash_report({"sha256": "07d0dc96f462..."},
                      {"dataset": {"test_sha256": "07d0dc96f462..."}})
    # "content hash 07d0dc96f462 matches the preset's metadata"
    ```
    """
    recorded = metadata.get("dataset", {}).get("test_sha256")
    line = f"content hash {info['sha256'][:12]} "
    if recorded == info["sha256"]:
        return line + "matches the preset's metadata"
    return line + (
        f"DIFFERS from the preset's metadata ({str(recorded)[:12]}): "
        "compare the accuracies below with the recorded ones"
        + ("" if info.get("verified", True) else " (unverified split)")
    )


def read_image(path):
    """A grayscale 28x28 `uint8` image `(28, 28, 1)` from an image file.

    Like MNIST, the digit should be light on a dark background.
    """
    image = keras.utils.load_img(
        path, color_mode="grayscale", target_size=(28, 28)
    )
    return keras.utils.img_to_array(image).astype("uint8")


def read_audio(path):
    """A mono 8 kHz float waveform of 8,000 samples from a WAV file."""
    from mmzoo.datasets.spoken_digits import _decode_wav
    from mmzoo.datasets.spoken_digits import _fit_length
    from mmzoo.datasets.spoken_digits import _resample

    try:
        with open(path, "rb") as f:
            audio, rate = _decode_wav(f.read())
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path!r} is not a readable WAV file: {e}") from e
    audio = _resample(audio, rate, av_digits.SAMPLE_RATE)
    return _fit_length(audio.astype("float32"), av_digits.NUM_SAMPLES)


def classify(classifier, raw, what, label=None):
    """Prints the digit `classifier` predicts from one raw example (a dict
    of batches of one; a modality left out is missing)."""
    logits = classifier.predict(raw, verbose=0)
    probabilities = keras.ops.convert_to_numpy(
        keras.ops.softmax(logits, axis=-1)
    )[0]
    digit = int(probabilities.argmax())
    print(
        f"\n{what}: predicted digit {digit} "
        f"(probability {probabilities[digit]:.2f})"
        + (f", true digit {label}" if label is not None else "")
    )
    return digit


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mmzoo", description=__doc__)
    parser.add_argument(
        "--preset",
        default=None,
        help="a fused AV-digits preset (default: the best one)",
    )
    parser.add_argument("--image", help="an image file of a digit")
    parser.add_argument("--audio", help="a WAV file of a spoken digit")
    args = parser.parse_args(argv)
    print(
        f"mmzoo {mmzoo.__version__}, Keras {keras.version()}, "
        f"backend {keras.backend.backend()}"
    )
    name = args.preset or best_fused_preset()
    classifier = mmzoo.models.MultimodalClassifier.from_preset(name)
    presets = mmzoo.list_presets(metadata=True)
    metadata = presets.get(name, {})
    print(f"loaded {name}: {metadata.get('description', '')}")

    if args.image or args.audio:
        raw = {}
        if args.image:
            raw["image"] = read_image(args.image)[None]
        if args.audio:
            raw["audio"] = read_audio(args.audio)[None]
        what = " + ".join(f"{k} {getattr(args, k)}" for k in raw)
        classify(classifier, raw, what)
        return 0

    start = time.time()
    try:
        x, y, info = load_av_digits("test", with_info=True)
    except av_digits.VerificationError as e:
        # Another espeak-ng version, say: the split is built anyway and the
        # accuracies, not the hash, tell whether it matters.
        print(f"{e}\nBuilding the test split unverified instead.")
        x, y, info = load_av_digits("test", with_info=True, verify=False)
    print(
        f"AV-digits {info['version']} test split: {len(y)} examples, "
        f"{len(info['speakers'])} unseen voices; loaded in "
        f"{time.time() - start:.0f} s; "
        + split_hash_report(info, metadata)
    )

    rows = [(name, classifier)] + [
        (other, mmzoo.models.MultimodalClassifier.from_preset(other))
        for other in UNIMODAL_PRESETS
        if other in presets
    ]
    print(
        f"\n{'preset':<22} {'modalities':<12} {'accuracy':>9} {'recorded':>9}"
    )
    for preset, model in rows:
        results = evaluate_subsets(model, x, y)
        recorded = presets[preset].get("test_accuracy", {})
        for subset in SUBSETS:
            if subset not in results:
                continue
            before = recorded.get(subset)
            before = f"{before:9.1%}" if before is not None else " " * 9
            print(f"{preset:<22} {subset:<12} {results[subset]:9.1%} {before}")

    classify(
        classifier,
        {"image": x["image"][:1], "audio": x["audio"][:1]},
        "test example 0 (uint8 image + 8 kHz waveform)",
        label=int(y[0]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
