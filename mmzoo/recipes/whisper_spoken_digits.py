"""A spoken-digit classifier on Whisper base, trained on synthetic speech only.

`python -m mmzoo.recipes.whisper_spoken_digits [--output DIR]`

1. Data: the digit words 0-9 in English, French, Spanish, Italian, German
   and Russian, synthesised by espeak-ng (`mmzoo.datasets.load_spoken_digits`)
   at 16 kHz. Voice variants are split: `VALIDATION_VARIANTS` are never
   trained on, and the validation set (other seed) uses only them, so model
   choices are made on unseen synthetic speakers.
2. Augmentation, each clip `--copies` times: placed at a random offset in
   the window, random gain, telephone band through 8 kHz or the GSM codec,
   background noise.
3. Model: `MultimodalClassifier` whose audio encoder is the frozen Whisper
   base encoder (`WhisperAudioEncoder.from_preset("whisper_base_multi")`,
   mean of its output frames), then `ProjectionFusion` and the logits. The
   encoder is frozen, so its pooled features are computed once and the head
   is trained on them; the head's layers are the classifier's own.
4. Evaluation: synthetic validation accuracy, and the 40 real recordings of
   `mmzoo.datasets.load_real_spoken_digits` (EVALUATION ONLY: never trained or
   tuned on), overall and per speaker.

The preset stores the head only; the encoder is read from the packages.
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
from mmzoo.datasets.spoken_digits import DEFAULT_VARIANTS

NAME = "whisper_spoken_digits"
SAMPLE_RATE = 16000
WINDOW_SECONDS = 1.5
LANGUAGES = ("en", "fr", "es", "it", "de", "ru")
VALIDATION_VARIANTS = ("m3", "f3", "croak")
TRAIN_VARIANTS = tuple(
    v for v in DEFAULT_VARIANTS if v not in VALIDATION_VARIANTS
)


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


def build_classifier(num_classes=10, hidden_dim=256, dropout=0.3):
    encoder = mmzoo.models.WhisperAudioEncoder.from_preset("whisper_base_multi")
    encoder.trainable = False
    backbone = mmzoo.models.MultimodalBackbone(
        encoders={"audio": encoder},
        fusion=mmzoo.layers.ProjectionFusion(
            output_dim=hidden_dim, activation="gelu"
        ),
    )
    preprocessor = mmzoo.models.MultimodalPreprocessor(
        audio_converter=mmzoo.layers.WhisperAudioConverter(
            max_audio_length=WINDOW_SECONDS
        ),
        modalities=["audio"],
    )
    return mmzoo.models.MultimodalClassifier(
        backbone=backbone,
        preprocessor=preprocessor,
        num_classes=num_classes,
        dropout=dropout,
    )


def encoder_features(classifier, audio, batch_size=32):
    """The frozen encoder's pooled output for raw waveforms."""
    converter = classifier.preprocessor.audio_converter
    encoder = classifier.backbone.encoders["audio"]
    progbar = keras.utils.Progbar(len(audio), unit_name="clip")
    out = []
    for start in range(0, len(audio), batch_size):
        features = converter(audio[start : start + batch_size])
        pooled = encoder.predict_on_batch(features)["pooled_output"]
        out.append(keras.ops.convert_to_numpy(pooled))
        progbar.update(min(start + batch_size, len(audio)))
    return np.concatenate(out)


def head_model(classifier):
    """The classifier's layers after the encoder, on pooled features."""
    backbone = classifier.backbone
    pooled = keras.Input((backbone.encoders["audio"].hidden_dim,))
    mask = keras.ops.ones_like(pooled[:, :1], dtype="int32")
    fused = backbone.fusion({"audio": pooled}, modality_mask=mask)
    logits = classifier.output_dense(classifier.output_dropout(fused))
    return keras.Model(pooled, logits)


def train_head(classifier, x, y, val, epochs, learning_rate, seed):
    keras.utils.set_random_seed(seed)
    head = head_model(classifier)
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
    return history.history


def evaluate_real(classifier):
    real = mmzoo.datasets.load_real_spoken_digits(sample_rate=SAMPLE_RATE)
    num_samples = int(SAMPLE_RATE * WINDOW_SECONDS)
    audio = np.zeros((len(real["labels"]), num_samples), "float32")
    for i, clip in enumerate(real["audio"]):
        audio[i, : min(clip.size, num_samples)] = clip[:num_samples]
    predicted = classifier.predict({"audio": audio}, verbose=0).argmax(-1)
    correct = predicted == real["labels"]
    per_speaker = {
        str(s): float(np.mean(correct[real["speakers"] == s]))
        for s in np.unique(real["speakers"])
    }
    return float(correct.mean()), per_speaker, predicted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=None)
    parser.add_argument("--num-per-digit", type=int, default=60)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.time()
    rng = np.random.default_rng(args.seed)
    waves, labels, speakers = synthetic_digits(
        args.num_per_digit, TRAIN_VARIANTS, seed=args.seed
    )
    val_waves, val_labels, _ = synthetic_digits(
        max(1, args.num_per_digit // 4), VALIDATION_VARIANTS, seed=1000
    )
    x_train = np.concatenate([augment(waves, rng) for _ in range(args.copies)])
    y_train = np.tile(labels, args.copies)
    x_val = augment(val_waves, np.random.default_rng(1000))
    print(f"data: {len(x_train)} train, {len(x_val)} validation clips")
    classifier = build_classifier()
    f_train = encoder_features(classifier, x_train)
    f_val = encoder_features(classifier, x_val)
    history = train_head(
        classifier,
        f_train,
        y_train,
        (f_val, val_labels),
        args.epochs,
        args.learning_rate,
        args.seed,
    )
    val_accuracy = float(
        np.mean(
            classifier.predict({"audio": x_val}, verbose=0).argmax(-1)
            == val_labels
        )
    )
    real_accuracy, per_speaker, _ = evaluate_real(classifier)
    result = {
        "validation_accuracy": round(val_accuracy, 4),
        "real_accuracy": round(real_accuracy, 4),
        "real_per_speaker": per_speaker,
        "minutes": round((time.time() - start) / 60, 1),
        "last_epoch": {k: round(v[-1], 4) for k, v in history.items()},
    }
    print(json.dumps(result, indent=1))
    if args.output:
        shutil.rmtree(args.output, ignore_errors=True)
        classifier.save_to_preset(args.output)
        print(f"saved {args.output}: {os.listdir(args.output)}")
    return classifier, result


if __name__ == "__main__":
    main()
