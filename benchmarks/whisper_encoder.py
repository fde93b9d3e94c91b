"""The Whisper base encoder against CTranslate2's, at 1 s, 3 s and 30 s.

`for b in jax torch tensorflow; do
KMP_BLOCKTIME=0 KERAS_BACKEND=$b python benchmarks/whisper_encoder.py; done`

Loads `WhisperAudioEncoder.from_preset("whisper_base_multi")` and
CTranslate2's `Whisper` from the same package weights (float32, as many
threads as CPU cores), computes the log-mel features once per window (not
timed), warms both up (tracing and compilation are not timed), then times
mmzoo's `predict_on_batch` and CTranslate2's `encode` on the same features,
alternately, medians of `--repeats`. Prints a Markdown row per window:
milliseconds per clip for both, their ratio (mmzoo's time over
CTranslate2's: at most 1 means mmzoo is as fast or faster), and mmzoo's
cost relative to a 30 s window. Run with `KMP_BLOCKTIME=0`: CTranslate2's
OpenMP threads otherwise keep spinning on the shared cores after each call.
"""

import argparse
import os
import platform

import keras
import numpy as np

import mmzoo
from mmzoo.recipes.whisper_base_multi import ctranslate2_encode
from mmzoo.recipes.whisper_base_multi import ctranslate2_model_dir
from timing import interleaved_medians

BATCH = {1: 16, 3: 8, 30: 2}


def time_window(encoder, ct2, seconds, repeats):
    converter = mmzoo.layers.WhisperAudioConverter(max_audio_length=seconds)
    rng = np.random.default_rng(0)
    audio = 0.1 * rng.normal(size=(BATCH[seconds], 16000 * seconds))
    features = keras.ops.convert_to_numpy(converter(audio.astype("float32")))

    def ours():
        out = encoder.predict_on_batch(features)
        keras.ops.convert_to_numpy(out["sequence_output"])  # wait for it

    def theirs():
        ctranslate2_encode(ct2, features)

    times = interleaved_medians((ours, theirs), repeats)
    return tuple(1000 * t / BATCH[seconds] for t in times)


def main(argv=None):
    import ctranslate2

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    encoder = mmzoo.models.WhisperAudioEncoder.from_preset("whisper_base_multi")
    with ctranslate2_model_dir() as directory:
        ct2 = ctranslate2.models.Whisper(
            directory,
            device="cpu",
            compute_type="float32",
            intra_threads=os.cpu_count(),
        )
        results = {
            s: time_window(encoder, ct2, s, args.repeats) for s in BATCH
        }
    print(
        f"# {keras.backend.backend()}, keras {keras.__version__}, "
        f"ctranslate2 {ctranslate2.__version__}, {os.cpu_count()} CPU "
        f"cores, {platform.processor() or 'cpu'}, KMP_BLOCKTIME="
        f"{os.environ.get('KMP_BLOCKTIME', 'unset')}"
    )
    print(
        "| backend | window | batch | mmzoo ms per clip "
        "| CTranslate2 ms per clip | ratio | vs 30 s |"
    )
    for seconds, (ours, theirs) in results.items():
        print(
            f"| {keras.backend.backend()} | {seconds} s | {BATCH[seconds]} "
            f"| {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} "
            f"| {ours / results[30][0]:.1%} |"
        )


if __name__ == "__main__":
    main()
